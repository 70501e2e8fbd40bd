//! Configuration from the environment (and an optional `.env` file).
//!
//! Every variable is declared once, in the table below: its field, name,
//! default, parser and help. The table makes the fields of [`Config`], the
//! [`VARIABLES`] listing and the loader; `.env.example` documents the same
//! list (a test keeps the two in step).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::schedule::Schedule;

/// A configuration variable: its name, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// `None` when unset has a meaning of its own, described in `help`.
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// Secrets are never printed or logged.
    pub secret: bool,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://necmail.db?mode=rwc";

/// Declares the variables, one entry each, in the order `config check` lists
/// them: `field: Type, [secret] "NAME" [= "default"], parser, "help";`.
///
/// It makes [`Config`] (one field per variable), [`VARIABLES`] and
/// `Config::read`. The parser turns the trimmed value into the field's type;
/// a variable without a default is `Type::default()` when unset.
macro_rules! variables {
    (@default) => { None };
    (@default $default:expr) => { Some($default) };
    (@secret) => { false };
    (@secret secret) => { true };
    (@variable $name:literal, [$($default:expr)?], [$($secret:ident)?], $help:literal) => {
        Variable {
            name: $name,
            default: variables!(@default $($default)?),
            help: $help,
            secret: variables!(@secret $($secret)?),
        }
    };
    (@value $loader:ident, $variable:expr, $parse:expr) => {
        $loader.read($variable, $parse).unwrap_or_default()
    };
    (@value $loader:ident, $variable:expr, $parse:expr, $default:expr) => {
        $loader
            .read($variable, $parse)
            .unwrap_or_else(|| ($parse)($default).expect("every default is valid"))
    };
    ($(
        $field:ident: $ty:ty, $($secret:ident)? $name:literal $(= $default:expr)?, $parse:expr,
            $help:literal;
    )+) => {
        /// The effective configuration.
        #[derive(Debug, Clone)]
        pub struct Config {
            $(#[doc = concat!("From `", $name, "`.")] pub $field: $ty,)+
            /// Each variable with its effective value (secrets redacted) and
            /// whether it was set, in [`VARIABLES`] order: what `config check`
            /// prints.
            pub effective: Vec<(&'static str, String, Source)>,
        }

        pub const VARIABLES: &[Variable] = &[$(
            variables!(@variable $name, [$($default)?], [$($secret)?], $help)
        ),+];

        impl Config {
            /// Reads and parses every variable through `lookup`. An invalid
            /// value is recorded as a problem and replaced by its default, so
            /// that every variable is checked.
            fn read(lookup: impl Fn(&str) -> Option<String>) -> (Self, Vec<Problem>) {
                let mut loader = Loader {
                    lookup,
                    problems: Vec::new(),
                    effective: Vec::new(),
                };
                let config = Config {
                    $($field: variables!(
                        @value
                        loader,
                        variables!(@variable $name, [$($default)?], [$($secret)?], $help),
                        $parse
                        $(, $default)?
                    ),)+
                    effective: loader.effective,
                };
                (config, loader.problems)
            }
        }
    };
}

variables! {
    database_url: DatabaseUrl, "DATABASE_URL" = DEFAULT_DATABASE_URL, DatabaseUrl::parse,
        "Where necmail keeps its data: sqlite://FILE?mode=rwc or postgres://USER:PASS@HOST:PORT/DB.";
    db_max_connections: u32, "NECMAIL_DB_MAX_CONNECTIONS" = "5", whole_number(1, 1000),
        "How many database connections each necmail process opens at most. On SQLite it opens \
         one more, which only writes.";
    worker_threads: Option<usize>, "NECMAIL_WORKER_THREADS", some(whole_number(1, 1024)),
        "How many threads run necmail's tasks (sending, pages, the scheduler). Unset: one fewer \
         than the CPUs necmail may use, and at least one, which leaves a core to the database and \
         the relay.";
    log_filter: Option<String>, "NECMAIL_LOG", some(log_filter),
        "Log filter, e.g. info or info,necmail=debug. Unset: info for serve, warn otherwise.";
    log_format: LogFormat, "NECMAIL_LOG_FORMAT" = "text", log_format,
        "Log format on stderr: text or json.";
    public_url: PublicUrl, "NECMAIL_PUBLIC_URL", public_url,
        "The address people reach necmail's pages at; every link in every email starts with it. \
         Unset: http:// and NECMAIL_HTTP_ADDR.";
    from: Sender, "NECMAIL_FROM" = "NEC Report <reports@necmail.localhost>", sender,
        "The From of every email. Its domain also names Message-IDs, List-Id and bounce addresses.";
    site_name: String, "NECMAIL_SITE_NAME", text,
        "The name of the pages and of the archive's feed. Unset: the name of NECMAIL_FROM.";
    committee: String, "NECMAIL_COMMITTEE_NAME" = "NEC", text,
        "The committee whose meetings the reports are of, as pages and emails name it: \
         \"Report of the NEC meeting of …\".";
    sender_address: Option<String>, "NECMAIL_SENDER_ADDRESS", some(text),
        "Who sends the emails and how to reach them, in every email's footer beside the sender's \
         name: a postal or contact address, as PECR and the bulk-sender rules expect. Unset: the \
         address of NECMAIL_FROM.";
    privacy_url: Option<String>, "NECMAIL_PRIVACY_URL", some(web_link),
        "The privacy notice every email's footer links to (http:// or https://). Unset: no link.";
    secret: Option<SecretString>, secret "NECMAIL_SECRET", some(signing_key),
        "The key that signs every link in every email. Unset: an insecure development key, refused by \
         `serve` unless NECMAIL_PUBLIC_URL is on localhost, and by every command that sends \
         through an SMTP relay.";
    secret_previous: Option<SecretString>, secret "NECMAIL_SECRET_PREVIOUS", some(signing_key),
        "The secret before the last rotation: links signed with it keep working, new links use \
         NECMAIL_SECRET. Unset: only NECMAIL_SECRET is accepted.";
    preferences_link_lifetime: Duration, "NECMAIL_PREFERENCES_LINK_DAYS" = "60",
        duration(DAY, 1, 3650),
        "Days a preferences link (change lists, download or erase one's data) works; an expired one \
         offers to email a fresh link. Unsubscribe links never expire.";
    templates_dir: Option<PathBuf>, "NECMAIL_TEMPLATES_DIR", some(path),
        "A folder whose templates override the built-in ones (same relative paths).";
    outbox_dir: PathBuf, "NECMAIL_OUTBOX_DIR" = "outbox", path,
        "Where mail is written as .eml files when no SMTP relay is configured.";
    feed_timeout: Duration, "NECMAIL_FEED_TIMEOUT_SECS" = "20", duration(SECOND, 1, 600),
        "How long one feed or page fetch may take.";
    feed_max_bytes: u64, "NECMAIL_FEED_MAX_BYTES" = "5000000", whole_number(1024, 1 << 30),
        "The largest feed or page necmail reads; larger ones are refused.";
    feed_allow_private: bool, "NECMAIL_FEED_ALLOW_PRIVATE" = "false", true_or_false,
        "true lets feed and page fetches connect to loopback, private, link-local and other \
         addresses that are not globally routable (an intranet blog); false refuses them.";
    timezone: chrono_tz::Tz, "NECMAIL_TIMEZONE" = "Europe/London", timezone,
        "The time zone of schedules and of times typed at the command line (an IANA name).";
    smtp: Option<SmtpUrl>, "NECMAIL_SMTP_URL", some(SmtpUrl::parse),
        "The SMTP relay: smtp://[user:pass@]host[:port][?tls=required] (STARTTLS) or smtps://… \
         (implicit TLS). Unset: mail goes to the outbox folder.";
    smtp_connections: usize, "NECMAIL_SMTP_CONNECTIONS" = "4", whole_number(1, 256),
        "How many SMTP connections each necmail process keeps open at most.";
    smtp_ca_file: Option<PathBuf>, "NECMAIL_SMTP_CA_FILE", some(path),
        "A PEM file of CA certificates (a private CA) that the relay's certificate may chain to, \
         besides the public roots necmail trusts. Unset: only the public roots.";
    smtp_timeout: Duration, "NECMAIL_SMTP_TIMEOUT_SECS" = "60", duration(SECOND, 1, 600),
        "How long one SMTP command may take before the connection is dropped.";
    helo_name: String, "NECMAIL_HELO_NAME", text,
        "The name necmail gives in EHLO. Unset: the domain of NECMAIL_FROM.";
    send_rate: u32, "NECMAIL_SEND_RATE" = "0", whole_number(0, 1_000_000),
        "Messages per second each necmail process sends at most; 0 is unlimited.";
    lease: Duration, "NECMAIL_LEASE_SECS" = "30", duration(SECOND, 3, 86_400),
        "How long a claimed delivery stays held after its process stops renewing it.";
    retry_base: Duration, "NECMAIL_RETRY_BASE_SECS" = "300", duration(SECOND, 1, 86_400),
        "The first retry delay after a temporary failure; it doubles each time.";
    retry_max_attempts: u32, "NECMAIL_RETRY_MAX_ATTEMPTS" = "20", whole_number(1, 1000),
        "Attempts before a deferred message is given up as failed.";
    retry_give_up_after: Duration, "NECMAIL_RETRY_GIVE_UP_HOURS" = "72",
        duration(HOUR, 1, 24 * 30),
        "Age after which a deferred message is given up as failed.";
    max_consecutive_failures: u32, "NECMAIL_MAX_CONSECUTIVE_FAILURES" = "50",
        whole_number(1, 1_000_000),
        "Relay failures in a row after which a campaign pauses itself; refused recipients never count.";
    dkim_selector: Option<String>, "NECMAIL_DKIM_SELECTOR", some(text),
        "DKIM selector; with the two below, every message is signed.";
    dkim_domain: Option<String>, "NECMAIL_DKIM_DOMAIN", some(text),
        "DKIM signing domain (d=). Unset with a selector: the domain of NECMAIL_FROM.";
    dkim_key_file: Option<PathBuf>, "NECMAIL_DKIM_KEY_FILE", some(path),
        "DKIM private key: RSA of 2048-4096 bits (PKCS#1 or PKCS#8 PEM) or Ed25519 (PKCS#8 PEM).";
    dkim_selector_2: Option<String>, "NECMAIL_DKIM_SELECTOR_2", some(text),
        "The selector of a second DKIM key, of the other algorithm: every message is then signed \
         with both, RSA and Ed25519 (RFC 8463). Unset: one signature.";
    dkim_key_file_2: Option<PathBuf>, "NECMAIL_DKIM_KEY_FILE_2", some(path),
        "The second DKIM private key, beside NECMAIL_DKIM_KEY_FILE: Ed25519 when that one is RSA, \
         or RSA when it is Ed25519.";
    reply_to: Option<Sender>, "NECMAIL_REPLY_TO", some(sender),
        "Where replies to the emails go (Reply-To), as Name <address> or an address: the reports \
         ask readers to reply. Unset: replies go to NECMAIL_FROM.";
    feedback_sender_id: String, "NECMAIL_FEEDBACK_SENDER_ID" = "necmail", feedback_sender_id,
        "The sender id ending every campaign message's Feedback-ID \
         (campaign:list:type:sender), for Gmail's feedback loop: 5 to 15 letters, digits, \
         dots, hyphens or underscores, the same on every message.";
    http_addr: SocketAddr, "NECMAIL_HTTP_ADDR" = "127.0.0.1:8080", http_addr,
        "The address and port `serve` listens on for the web pages.";
    http_header_timeout: Duration, "NECMAIL_HTTP_HEADER_TIMEOUT_SECS" = "10",
        duration(SECOND, 1, 3600),
        "How long a client has to send a request's headers, counted from when the server waits for \
         them: on a new connection, and between requests on a kept-alive one (the keep-alive idle timeout).";
    http_body_timeout: Duration, "NECMAIL_HTTP_BODY_TIMEOUT_SECS" = "10",
        duration(SECOND, 1, 3600),
        "How long a client has to send a request's body once its headers are in.";
    http_max_connections: Option<usize>, "NECMAIL_HTTP_MAX_CONNECTIONS",
        some(whole_number(1, 1_000_000)),
        "How many connections the web pages serve at once; more wait to be accepted. Unset: the \
         open-file limit (ulimit -n) less a reserve for the database, SMTP and files, at most 4096.";
    metrics_addr: Option<SocketAddr>, "NECMAIL_METRICS_ADDR" = "127.0.0.1:9187",
        metrics_addr,
        "The address and port of the Prometheus /metrics listener, kept off the public pages; \
         off: no metrics listener.";
    admin_addr: AdminAddr, "NECMAIL_ADMIN_ADDR" = "127.0.0.1:8081", admin_addr,
        "Where `serve` serves the web admin, under /admin: an address and port of its own, \
         private unless a reverse proxy exposes it; public: beside the public pages on \
         NECMAIL_HTTP_ADDR; off: no web admin.";
    admin_url: Option<url::Url>, "NECMAIL_ADMIN_URL", some(web_url),
        "The address people reach the web admin at (its /admin pages are under it), for the \
         links `necmail admin add` prints; https:// makes its cookies Secure. Unset: \
         NECMAIL_PUBLIC_URL when NECMAIL_ADMIN_ADDR is public, http:// and NECMAIL_ADMIN_ADDR \
         otherwise.";
    admin_upload_max_bytes: usize, "NECMAIL_ADMIN_UPLOAD_MAX_BYTES" = "100000000",
        whole_number(1024, 1 << 34),
        "The largest CSV of subscribers the web admin takes by upload, in bytes (100 MB holds \
         about two million rows); a larger one is refused and nothing is imported. It is kept \
         in NECMAIL_SPOOL_DIR while it is imported.";
    spool_dir: PathBuf, "NECMAIL_SPOOL_DIR" = "spool", path,
        "Where a one-click unsubscribe is kept, on disk, when the database cannot take it; \
         it is applied as soon as the database is back.";
    trusted_proxies: Vec<std::net::IpAddr>, "NECMAIL_TRUSTED_PROXIES", ip_addresses,
        "Comma-separated IP addresses of reverse proxies whose X-Forwarded-For is believed. \
         Unset: the socket's peer address is the client's.";
    allowed_origins: Vec<String>, "NECMAIL_ALLOWED_ORIGINS", origins,
        "Comma-separated origins (https://blog.example) whose pages may POST /subscribe as JSON. \
         Unset: none.";
    consent_version: String, "NECMAIL_CONSENT_VERSION" = "subscribe-form-v1", one_line,
        "Stored with each consent given on the subscribe form; change it when you change the wording.";
    subscribe_per_ip_per_hour: u32, "NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR" = "20",
        whole_number(1, 1_000_000),
        "Subscribe requests one IP address may make per hour.";
    confirmations_per_address_per_day: u32, "NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY" = "3",
        whole_number(1, 1000),
        "Confirmation emails one address may be sent per day.";
    confirmations_per_hour: u32, "NECMAIL_CONFIRMATIONS_PER_HOUR" = "500",
        whole_number(1, 1_000_000),
        "Confirmation emails sent per hour at most, for every address together; past it, \
         confirmations wait their turn (stored, never dropped).";
    poll_schedule: Schedule, "NECMAIL_POLL_SCHEDULE" = "*/15 * * * *", schedule,
        "When `serve` polls the feed sources: a crontab line (5 fields, or 6 with seconds).";
    dispatch_schedule: Schedule, "NECMAIL_DISPATCH_SCHEDULE" = "0 9 * * *", schedule,
        "The dispatch window: a report found by a poll is sent at the next time this fires.";
    default_lists: Vec<crate::lists::ListSlug>, "NECMAIL_DEFAULT_LISTS", list_slugs,
        "Comma-separated lists a new report goes to when its source names none. \
         Unset: such reports get no campaign (a warning is logged).";
    auto_dispatch: AutoDispatch, "NECMAIL_AUTO_DISPATCH" = "schedule", auto_dispatch,
        "schedule: a new report's campaign starts at the next dispatch window; \
         hold: it waits for `necmail campaign approve ID`.";
    report_overdue_days: u32, "NECMAIL_REPORT_OVERDUE_DAYS" = "14", whole_number(1, 365),
        "Days after a meeting with no report before `serve` warns the admin.";
    admin_email: Option<crate::subscribers::SubscriberEmail>, "NECMAIL_ADMIN_EMAIL", some(email),
        "Where `serve` mails warnings (an overdue report). Unset: they are only logged.";
    inbound_addr: Option<SocketAddr>, "NECMAIL_INBOUND_ADDR" = "127.0.0.1:2525", inbound_addr,
        "The address and port of the SMTP and LMTP listener `serve` takes inbound mail on: \
         joins, leaves, the mailto unsubscribe, bounces and complaints for the domain of \
         NECMAIL_FROM. off: no listener (`necmail receive` still works).";
    inbound_max_bytes: usize, "NECMAIL_INBOUND_MAX_BYTES" = "10000000", whole_number(1024, 1 << 30),
        "The largest inbound message taken, in bytes; a larger one is refused (552).";
    inbound_max_connections: usize, "NECMAIL_INBOUND_MAX_CONNECTIONS" = "32",
        whole_number(1, 100_000),
        "How many inbound SMTP or LMTP connections are served at once; more wait to be accepted.";
    inbound_max_recipients: usize, "NECMAIL_INBOUND_MAX_RECIPIENTS" = "100",
        whole_number(1, 100_000),
        "Recipients one inbound message may have; more are refused (452).";
    inbound_timeout: Duration, "NECMAIL_INBOUND_TIMEOUT_SECS" = "60", duration(SECOND, 1, 3600),
        "How long an inbound client has to send each command, or each piece of a message; and \
         how long the server of NECMAIL_BOUNCE_MAILBOX has to connect and answer each command.";
    soft_bounce_limit: u32, "NECMAIL_SOFT_BOUNCE_LIMIT" = "3", whole_number(1, 1000),
        "Soft bounces (a full mailbox, a temporary failure) within NECMAIL_SOFT_BOUNCE_DAYS \
         that suppress an address.";
    soft_bounce_days: u32, "NECMAIL_SOFT_BOUNCE_DAYS" = "30", whole_number(1, 3650),
        "The window, in days, in which NECMAIL_SOFT_BOUNCE_LIMIT soft bounces are counted.";
    bounce_mailbox: Option<BounceMailbox>, "NECMAIL_BOUNCE_MAILBOX", some(BounceMailbox::parse),
        "A mailbox the relay returns bounces to, which `serve` polls over IMAP: \
         imaps://user:pass@host[:port]/MAILBOX (imap:// only on this machine). Each unseen \
         message is handled as mail to bounces@, then deleted. Unset: no mailbox is polled.";
    bounce_poll_schedule: Schedule, "NECMAIL_BOUNCE_POLL_SCHEDULE" = "*/5 * * * *", schedule,
        "When `serve` polls NECMAIL_BOUNCE_MAILBOX: a crontab line (5 fields, or 6 with seconds).";
    bounce_poll_max: usize, "NECMAIL_BOUNCE_POLL_MAX" = "500", whole_number(1, 100_000),
        "Messages one poll of NECMAIL_BOUNCE_MAILBOX takes at most, oldest first; the rest wait \
         for the next poll.";
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`; empty values count as unset.
    /// Every problem is reported, in the order the variables are declared.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (mut config, mut problems) = Self::read(lookup);
        problems.extend(config.combine());
        problems.sort_by_key(|p| VARIABLES.iter().position(|v| v.name == p.variable));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Fills in the values that depend on other variables, and checks the
    /// variables that only make sense together.
    fn combine(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |variable, reason: &str| {
            problems.push(Problem {
                variable,
                reason: reason.to_owned(),
            })
        };
        if self.helo_name.is_empty() {
            self.helo_name = self.from.domain().to_owned();
        }
        if self.site_name.is_empty() {
            self.site_name = self
                .from
                .name
                .clone()
                .unwrap_or_else(|| format!("{} reports", self.committee));
        }
        if let Some((_, shown, Source::Default)) = self
            .effective
            .iter_mut()
            .find(|(name, _, _)| *name == "NECMAIL_PUBLIC_URL")
        {
            self.public_url = PublicUrl::serving(self.http_addr);
            *shown = self.public_url.to_string();
        }
        for (variable, schedule) in [
            ("NECMAIL_POLL_SCHEDULE", &mut self.poll_schedule),
            ("NECMAIL_DISPATCH_SCHEDULE", &mut self.dispatch_schedule),
            (
                "NECMAIL_BOUNCE_POLL_SCHEDULE",
                &mut self.bounce_poll_schedule,
            ),
        ] {
            match Schedule::parse(schedule.line(), self.timezone) {
                Ok(in_timezone) => *schedule = in_timezone,
                Err(e) => problem(variable, &e.to_string()),
            }
        }
        if self.secret_previous.is_some() && self.secret.is_none() {
            problem(
                "NECMAIL_SECRET_PREVIOUS",
                "it only makes sense with NECMAIL_SECRET, the secret that replaced it",
            );
        }
        for (selector, key_file, both) in [
            (
                &self.dkim_selector,
                &self.dkim_key_file,
                ["NECMAIL_DKIM_SELECTOR", "NECMAIL_DKIM_KEY_FILE"],
            ),
            (
                &self.dkim_selector_2,
                &self.dkim_key_file_2,
                ["NECMAIL_DKIM_SELECTOR_2", "NECMAIL_DKIM_KEY_FILE_2"],
            ),
        ] {
            match (selector, key_file) {
                (Some(_), None) => {
                    problem(both[1], &format!("it is needed when {} is set", both[0]))
                }
                (None, Some(_)) => {
                    problem(both[0], &format!("it is needed when {} is set", both[1]))
                }
                _ => {}
            }
        }
        if self.dkim_selector_2.is_some() && self.dkim_selector.is_none() {
            problem(
                "NECMAIL_DKIM_SELECTOR_2",
                "it is for a second key: set NECMAIL_DKIM_SELECTOR and NECMAIL_DKIM_KEY_FILE first",
            );
        }
        if self.dkim_selector_2.is_some() && self.dkim_selector_2 == self.dkim_selector {
            problem(
                "NECMAIL_DKIM_SELECTOR_2",
                "it must differ from NECMAIL_DKIM_SELECTOR: each key is published under its own selector",
            );
        }
        problems
    }

    /// When to retry deferred mail and when to give up.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.retry_base,
            max_attempts: self.retry_max_attempts,
            give_up_after: self.retry_give_up_after,
        }
    }

    /// The DKIM keys every message is signed with: none, one, or two (a
    /// selector and a key file each), in the order configured.
    pub fn dkim(&self) -> Vec<DkimSettings> {
        let domain = self
            .dkim_domain
            .clone()
            .unwrap_or_else(|| self.from.domain().to_owned());
        [
            (&self.dkim_selector, &self.dkim_key_file),
            (&self.dkim_selector_2, &self.dkim_key_file_2),
        ]
        .into_iter()
        .filter_map(|(selector, key_file)| {
            Some(DkimSettings {
                selector: selector.clone()?,
                domain: domain.clone(),
                key_file: key_file.clone()?,
            })
        })
        .collect()
    }

    /// How reports are linked to meetings: published within the overdue
    /// days after one, counted in NECMAIL_TIMEZONE.
    pub fn link_rules(&self) -> crate::meetings::LinkRules {
        crate::meetings::LinkRules {
            within_days: self.report_overdue_days,
            timezone: self.timezone,
        }
    }

    /// How many threads run the async tasks: NECMAIL_WORKER_THREADS, or one
    /// fewer than the CPUs this process may use, and at least one. A send
    /// hands work back and forth between these threads, SQLite's own thread
    /// and the relay; on two cores one worker thread sent 2–4% faster, with
    /// 5–7% less CPU per message, than two did (README, "Worker threads").
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |cpus| cpus.get().saturating_sub(1).max(1))
        })
    }

    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// The signer for links: NECMAIL_SECRET, and NECMAIL_SECRET_PREVIOUS for
    /// verifying. Without NECMAIL_SECRET it uses a fixed, publicly known
    /// development key: fine for the outbox on localhost, never for real mail
    /// (see [`Config::check_for_sending`]).
    pub fn signer(&self) -> crate::tokens::Signer {
        crate::tokens::Signer::with_previous(
            self.secret
                .as_ref()
                .map_or(DEVELOPMENT_SECRET, ExposeSecret::expose_secret),
            self.secret_previous
                .as_ref()
                .map(ExposeSecret::expose_secret),
        )
    }

    /// The check before anything signs links into mail (`serve`, `campaign
    /// send`, `send-test`): with the public development key anyone could
    /// forge every unsubscribe and preferences link. It may only sign mail
    /// that goes to the outbox folder, with links to localhost.
    pub fn check_for_sending(&self) -> Result<(), ConfigError> {
        if self.secret.is_some() {
            return Ok(());
        }
        let why = if self.smtp.is_some() {
            "mail goes out through NECMAIL_SMTP_URL".to_owned()
        } else if !self.public_url_is_local() {
            format!(
                "NECMAIL_PUBLIC_URL ({}) is not on localhost",
                self.public_url
            )
        } else {
            tracing::warn!(
                "NECMAIL_SECRET is unset: links are signed with the public development key, \
                 which is fine only for trying necmail out on this machine"
            );
            return Ok(());
        };
        Err(ConfigError(vec![Problem {
            variable: "NECMAIL_SECRET",
            reason: format!(
                "it must be set when {why}, or anyone could forge the links in every email; \
                 `openssl rand -hex 32` makes a good one"
            ),
        }]))
    }

    /// True when the public URL points at this machine.
    pub fn public_url_is_local(&self) -> bool {
        match self.public_url.host() {
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Where the web admin is reached: NECMAIL_ADMIN_URL, or what
    /// NECMAIL_ADMIN_ADDR implies.
    pub fn admin_base(&self) -> url::Url {
        match (&self.admin_url, self.admin_addr) {
            (Some(url), _) => url.clone(),
            (None, AdminAddr::Listen(addr)) => PublicUrl::serving(addr).0,
            (None, AdminAddr::Public | AdminAddr::Off) => self.public_url.0.clone(),
        }
    }

    /// The absolute URL of a path of the web admin (`/admin/…`).
    pub fn admin_link(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.admin_base().as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// The absolute URL of a path on necmail's public site.
    pub fn public_link(&self, path: &str) -> String {
        let mut link = String::new();
        self.push_public_link(path, &mut link);
        link
    }

    /// Appends [`Config::public_link`] of `path` to `out`.
    pub fn push_public_link(&self, path: &str, out: &mut String) {
        out.push_str(self.public_url.as_str().trim_end_matches('/'));
        out.push('/');
        out.push_str(path.trim_start_matches('/'));
    }
}

/// One variable that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: &'static str,
    pub reason: String,
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.variable, p.reason))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    Default,
}

/// Reads variables one by one, recording what it found and what was wrong.
struct Loader<F> {
    lookup: F,
    problems: Vec<Problem>,
    effective: Vec<(&'static str, String, Source)>,
}

impl<F: Fn(&str) -> Option<String>> Loader<F> {
    /// Reads a variable (or its default) and parses it. `None` when it is
    /// unset and has no default, or when it is invalid: then the problem is
    /// recorded.
    fn read<T>(&mut self, var: Variable, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let set = (self.lookup)(var.name).filter(|v| !v.trim().is_empty());
        let source = if set.is_some() {
            Source::Environment
        } else {
            Source::Default
        };
        let raw = set.or_else(|| var.default.map(str::to_owned));
        let shown = match (&raw, var.secret) {
            (Some(_), true) => "(redacted)".to_owned(),
            (Some(v), false) => redact_url(v.trim()),
            (None, _) => "(unset)".to_owned(),
        };
        self.effective.push((var.name, shown, source));
        match parse(raw?.trim()) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.problems.push(Problem {
                    variable: var.name,
                    reason,
                });
                None
            }
        }
    }
}

/// A parser for a variable that is `None` when unset.
fn some<T>(
    parse: impl Fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<Option<T>, String> {
    move |v| parse(v).map(Some)
}

fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

fn whole_number<T: std::str::FromStr>(min: u64, max: u64) -> impl Fn(&str) -> Result<T, String> {
    move |v| {
        v.parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| n.to_string().parse().ok())
            .ok_or_else(|| format!("{v:?} is not a whole number from {min} to {max}"))
    }
}

/// Units of [`duration`], in seconds.
const SECOND: u64 = 1;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// A whole number of `unit`s from `min` to `max`.
fn duration(unit: u64, min: u64, max: u64) -> impl Fn(&str) -> Result<Duration, String> {
    let number = whole_number::<u64>(min, max);
    move |v| number(v).map(|n| Duration::from_secs(unit * n))
}

fn true_or_false(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

fn log_filter(v: &str) -> Result<String, String> {
    match tracing_subscriber::EnvFilter::try_new(v) {
        Ok(_) => Ok(v.to_owned()),
        Err(e) => Err(format!("{v:?} is not a log filter: {e}")),
    }
}

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not text or json")),
    }
}

fn web_url(v: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(v).map_err(|e| format!("{v:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!(
            "{v:?} must be an http:// or https:// URL with a host"
        )),
    }
}

fn web_link(v: &str) -> Result<String, String> {
    web_url(v).map(|_| v.to_owned())
}

fn public_url(v: &str) -> Result<PublicUrl, String> {
    web_url(v).map(PublicUrl)
}

fn sender(v: &str) -> Result<Sender, String> {
    Sender::parse(v).map_err(|e| format!("{v:?} is not Name <address>: {e}"))
}

fn signing_key(v: &str) -> Result<SecretString, String> {
    if v.len() < 16 {
        Err("it must be at least 16 characters; `openssl rand -hex 32` makes a good one".into())
    } else {
        Ok(SecretString::from(v))
    }
}

fn timezone(v: &str) -> Result<chrono_tz::Tz, String> {
    v.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("{v:?} is not a time zone such as Europe/London"))
}

fn http_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse::<SocketAddr>()
        .map_err(|_| format!("{v:?} is not an address and port such as 127.0.0.1:8080"))
}

fn metrics_addr(v: &str) -> Result<Option<SocketAddr>, String> {
    match v {
        "off" => Ok(None),
        v => v
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| format!("{v:?} is not off or an address and port such as 127.0.0.1:9187")),
    }
}

fn admin_addr(v: &str) -> Result<AdminAddr, String> {
    match v {
        "off" => Ok(AdminAddr::Off),
        "public" => Ok(AdminAddr::Public),
        v => v.parse::<SocketAddr>().map(AdminAddr::Listen).map_err(|_| {
            format!("{v:?} is not off, public, or an address and port such as 127.0.0.1:8081")
        }),
    }
}

fn inbound_addr(v: &str) -> Result<Option<SocketAddr>, String> {
    match v {
        "" | "off" => Ok(None),
        v => v
            .parse::<SocketAddr>()
            .map(Some)
            .map_err(|_| format!("{v:?} is not off or an address and port such as 127.0.0.1:2525")),
    }
}

fn ip_addresses(v: &str) -> Result<Vec<std::net::IpAddr>, String> {
    comma_list(v)
        .map(|ip| {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{ip:?} is not an IP address"))
        })
        .collect()
}

/// Origins as `scheme://host[:port]`.
fn origins(v: &str) -> Result<Vec<String>, String> {
    comma_list(v)
        .map(|o| match url::Url::parse(o) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(u.origin().ascii_serialization())
            }
            _ => Err(format!(
                "{o:?} is not an origin such as https://blog.example"
            )),
        })
        .collect()
}

/// Gmail's feedback loop wants a sender id of 5 to 15 characters; a colon
/// would be read as a field separator of the Feedback-ID.
fn feedback_sender_id(v: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if (5..=15).contains(&v.len()) && v.chars().all(allowed) {
        Ok(v.to_owned())
    } else {
        Err("it must be 5 to 15 letters, digits, dots, hyphens or underscores".into())
    }
}

fn one_line(v: &str) -> Result<String, String> {
    if v.len() <= 100 && !v.chars().any(char::is_control) {
        Ok(v.to_owned())
    } else {
        Err("it must be one line of at most 100 characters".into())
    }
}

/// A crontab line, checked here in UTC; [`Config::combine`] reads it again
/// in NECMAIL_TIMEZONE.
fn schedule(v: &str) -> Result<Schedule, String> {
    Schedule::parse(v, chrono_tz::Tz::UTC).map_err(|e| e.to_string())
}

fn list_slugs(v: &str) -> Result<Vec<crate::lists::ListSlug>, String> {
    comma_list(v)
        .map(|s| crate::lists::ListSlug::parse(s).map_err(|e| format!("{s:?}: {e}")))
        .collect()
}

fn auto_dispatch(v: &str) -> Result<AutoDispatch, String> {
    match v {
        "schedule" => Ok(AutoDispatch::Schedule),
        "hold" => Ok(AutoDispatch::Hold),
        other => Err(format!("{other:?} is not schedule or hold")),
    }
}

fn email(v: &str) -> Result<crate::subscribers::SubscriberEmail, String> {
    crate::subscribers::SubscriberEmail::parse(v).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the web admin is served (NECMAIL_ADMIN_ADDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAddr {
    /// On a listener of its own.
    Listen(SocketAddr),
    /// Under /admin on the public listener.
    Public,
    Off,
}

/// Where people reach necmail's pages; every link in every email starts
/// with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    /// necmail's own address when it serves on `addr`: loopback when that
    /// is every interface, since the name people would use is unknown.
    fn serving(addr: SocketAddr) -> Self {
        let ip: IpAddr = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let url = format!("http://{}/", SocketAddr::new(ip, addr.port()));
        PublicUrl(url::Url::parse(&url).expect("an IP address and port make a URL"))
    }
}

/// Only until the configuration derives it from NECMAIL_HTTP_ADDR.
impl Default for PublicUrl {
    fn default() -> Self {
        PublicUrl::serving(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)))
    }
}

impl std::ops::Deref for PublicUrl {
    type Target = url::Url;

    fn deref(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A parsed `Name <address@domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: Option<String>,
    pub address: String,
}

impl Sender {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (name, address) = match s.rsplit_once('<') {
            Some((name, rest)) => {
                let address = rest.strip_suffix('>').ok_or("a '<' needs a closing '>'")?;
                let name = name.trim().trim_matches('"').trim();
                ((!name.is_empty()).then(|| name.to_owned()), address)
            }
            None => (None, s),
        };
        if name
            .as_deref()
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err("the name contains a control character".into());
        }
        let address =
            crate::subscribers::SubscriberEmail::parse(address).map_err(|e| e.to_string())?;
        Ok(Sender {
            name,
            address: address.to_string(),
        })
    }

    /// The domain of the address: the mail domain of Message-IDs, List-Id and VERP.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// How a relay is reached, from `NECMAIL_SMTP_URL`.
#[derive(Clone)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://`: STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// `smtp://…?tls=required`: STARTTLS or refuse to send.
    Required,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

impl SmtpUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(raw).map_err(|e| format!("{} is not a URL: {e}", redact_url(raw)))?;
        let (mut tls, default_port) = match url.scheme() {
            "smtp" => (SmtpTls::Opportunistic, 25),
            "smtps" => (SmtpTls::Implicit, 465),
            other => return Err(format!("the scheme {other:?} is not smtp or smtps")),
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "required" | "starttls") if tls == SmtpTls::Opportunistic => {
                    tls = SmtpTls::Required
                }
                ("tls", "opportunistic") if tls == SmtpTls::Opportunistic => {}
                (k, v) => {
                    return Err(format!(
                        "unknown option {k}={v}; the only one is tls=required (or tls=starttls)"
                    ));
                }
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("it has no host")?
            .to_owned();
        let username = (!url.username().is_empty())
            .then(|| percent_decoded(url.username()))
            .flatten();
        let password = url
            .password()
            .and_then(percent_decoded)
            .map(SecretString::from);
        Ok(SmtpUrl {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            username,
            password,
        })
    }

    /// True when the relay is on this machine, where a password may travel
    /// unencrypted.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The mailbox bounces are polled from, from `NECMAIL_BOUNCE_MAILBOX`. Its
/// password shows nowhere: `Debug` and `Display` replace it.
#[derive(Clone)]
pub struct BounceMailbox {
    pub host: String,
    pub port: u16,
    /// `imaps://`: TLS from the first byte; `imap://` (on this machine only): none.
    pub tls: bool,
    pub username: String,
    pub password: SecretString,
    /// The mailbox to poll, such as INBOX.
    pub mailbox: String,
}

impl BounceMailbox {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let shown = redact_url(raw);
        let url = url::Url::parse(raw).map_err(|e| format!("{shown} is not a URL: {e}"))?;
        let (tls, default_port) = match url.scheme() {
            "imaps" => (true, 993),
            "imap" => (false, 143),
            other => return Err(format!("the scheme {other:?} is not imaps or imap")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("it has no host")?
            .to_owned();
        let decode = |s: &str| {
            percent_decoded(s).ok_or("its user, password or mailbox is not UTF-8".to_owned())
        };
        let username = decode(url.username())?;
        let password = decode(url.password().unwrap_or_default())?;
        if username.is_empty() || password.is_empty() {
            return Err(format!(
                "{shown} needs a user and a password: imaps://user:pass@host/INBOX"
            ));
        }
        let mailbox = decode(url.path().trim_start_matches('/'))?;
        let mailbox = if mailbox.is_empty() {
            "INBOX".to_owned()
        } else {
            mailbox
        };
        if !mailbox
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ')
        {
            return Err(
                "the mailbox name must be printable ASCII without quotes or backslashes".into(),
            );
        }
        let mailbox_url = BounceMailbox {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            username,
            password: SecretString::from(password),
            mailbox,
        };
        if !tls && !mailbox_url.is_loopback() {
            return Err(format!(
                "{shown} would send the password unencrypted to another machine: use imaps://, \
                 or imap:// only for a server on this machine"
            ));
        }
        Ok(mailbox_url)
    }

    /// True when the server is on this machine.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for BounceMailbox {
    /// `imaps://user@host:port/MAILBOX`: no password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "imaps" } else { "imap" };
        write!(
            f,
            "{scheme}://{}@{}:{}/{}",
            self.username, self.host, self.port, self.mailbox
        )
    }
}

impl fmt::Debug for BounceMailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BounceMailbox")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"REDACTED")
            .field("mailbox", &self.mailbox)
            .finish()
    }
}

/// When to retry deferred mail and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_attempts: u32,
    pub give_up_after: Duration,
}

/// DKIM signing, when configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    pub key_file: PathBuf,
}

/// What happens to the campaign of a report found by a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoDispatch {
    /// Scheduled for the next dispatch window.
    Schedule,
    /// Held until an admin approves it.
    Hold,
}

/// The database a `DATABASE_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`'s scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Database pool settings, the same for both backends.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 5,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The non-empty items of a comma-separated value.
fn comma_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A part of a URL (user, password, path) with its %-escapes decoded;
/// `None` when that is not UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A URL with its password replaced, safe to print and log. Text that does
/// not parse as a URL loses whatever stands between the first `:` after
/// `scheme://` and the last `@`, in case it is a password.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => match loose_password(raw) {
            Some(range) => format!("{}REDACTED{}", &raw[..range.start], &raw[range.end..]),
            None => raw.to_owned(),
        },
    }
}

/// Where a password would stand in `scheme://user:password@host…`, found
/// without parsing: between the first `:` of the authority and the last `@`.
fn loose_password(raw: &str) -> Option<std::ops::Range<usize>> {
    let start = raw.find("://")? + 3;
    let at = start + raw[start..].rfind('@')?;
    let colon = start + raw[start..at].find(':')?;
    Some(colon + 1..at)
}

/// The fixed key of links signed without NECMAIL_SECRET. It is public, so
/// such links can be forged: see [`Config::check_for_sending`].
const DEVELOPMENT_SECRET: &str = "necmail insecure development secret";

/// DATABASE_URL. It may hold a password, so it shows (in `Debug`, `Display`
/// and logs) with the password replaced; [`DatabaseUrl::expose`] gives the
/// real one to the store.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    shown: String,
}

impl DatabaseUrl {
    /// Checks that the URL is one the backend it names can open.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use std::str::FromStr;
        let shown = redact_url(raw);
        let scrub = |e: sqlx::Error| {
            let reason = e.to_string();
            match loose_password(raw)
                .map(|r| &raw[r])
                .filter(|p| !p.is_empty())
            {
                Some(password) => reason.replace(password, "REDACTED"),
                None => reason,
            }
        };
        match Backend::from_url(raw) {
            Some(Backend::Sqlite) => sqlx::sqlite::SqliteConnectOptions::from_str(raw)
                .map(drop)
                .map_err(|e| format!("{shown} is not a valid SQLite URL: {}", scrub(e)))?,
            Some(Backend::Postgres) => {
                let url = url::Url::parse(raw)
                    .map_err(|e| format!("{shown} is not a valid PostgreSQL URL: {e}"))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(format!("{shown} names no database server"));
                }
                sqlx::postgres::PgConnectOptions::from_str(raw)
                    .map(drop)
                    .map_err(|e| format!("{shown} is not a valid PostgreSQL URL: {}", scrub(e)))?
            }
            None => return Err(format!("{shown} must start with sqlite:// or postgres://")),
        }
        Ok(DatabaseUrl {
            url: SecretString::from(raw),
            shown,
        })
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The file a SQLite URL names, made absolute (a relative one is in the
    /// working folder); `None` for PostgreSQL and in-memory databases.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        use std::str::FromStr;
        let raw = self.expose();
        if Backend::from_url(raw) != Some(Backend::Sqlite) {
            return None;
        }
        // Read as sqlx reads it: `sqlite::memory:`, `sqlite://:memory:` and
        // `mode=memory` are in memory.
        let rest = raw
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
        let in_memory = database == ":memory:"
            || url::form_urlencoded::parse(query.as_bytes())
                .any(|(key, value)| key == "mode" && value == "memory");
        if in_memory {
            return None;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(raw).ok()?;
        std::path::absolute(options.get_filename()).ok()
    }

    /// Which database this is, for people: the SQLite file, or the URL
    /// without its password.
    pub fn location(&self) -> String {
        match self.sqlite_file() {
            Some(file) => format!("the SQLite file {}", file.display()),
            None => self.shown.clone(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn with_nothing_set_the_defaults_work() {
        let c = load(&[]).unwrap();
        assert_eq!(c.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.db_max_connections, 5);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.from.to_string(), "NEC Report <reports@necmail.localhost>");
        assert_eq!(c.from.domain(), "necmail.localhost");
        assert_eq!(c.public_link("/u/abc"), "http://127.0.0.1:8080/u/abc");
        assert_eq!(c.effective.len(), VARIABLES.len());
    }

    #[test]
    fn unset_the_public_url_follows_the_address_necmail_serves_on() {
        let link = |pairs: &[(&str, &str)]| load(pairs).unwrap().public_link("/archive");
        assert_eq!(
            link(&[("NECMAIL_HTTP_ADDR", "127.0.0.1:9000")]),
            "http://127.0.0.1:9000/archive"
        );
        assert_eq!(
            link(&[("NECMAIL_HTTP_ADDR", "0.0.0.0:8081")]),
            "http://127.0.0.1:8081/archive"
        );
        assert_eq!(
            link(&[("NECMAIL_HTTP_ADDR", "[::]:8082")]),
            "http://[::1]:8082/archive"
        );
        assert_eq!(
            link(&[
                ("NECMAIL_HTTP_ADDR", "127.0.0.1:9000"),
                ("NECMAIL_PUBLIC_URL", "https://news.example.org"),
            ]),
            "https://news.example.org/archive"
        );
        let shown = load(&[("NECMAIL_HTTP_ADDR", "127.0.0.1:9000")])
            .unwrap()
            .effective;
        assert!(
            shown.contains(&(
                "NECMAIL_PUBLIC_URL",
                "http://127.0.0.1:9000/".to_owned(),
                Source::Default
            )),
            "{shown:?}"
        );
    }

    #[test]
    fn only_a_sqlite_url_names_a_file_and_a_relative_one_is_in_the_working_folder() {
        let file = |url: &str| DatabaseUrl::parse(url).unwrap().sqlite_file();
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            file("sqlite://necmail.db?mode=rwc"),
            Some(here.join("necmail.db"))
        );
        assert_eq!(
            file("sqlite:///var/lib/necmail/necmail.db"),
            Some("/var/lib/necmail/necmail.db".into())
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory"), None);
        assert_eq!(file("postgres://necmail:hunter2@db.example/necmail"), None);
        let location = DatabaseUrl::parse("postgres://necmail:hunter2@db.example/necmail")
            .unwrap()
            .location();
        assert_eq!(location, "postgres://necmail:REDACTED@db.example/necmail");
    }

    #[test]
    fn every_bad_variable_is_named_with_its_reason() {
        let err = load(&[
            ("DATABASE_URL", "mysql://x"),
            ("NECMAIL_DB_MAX_CONNECTIONS", "lots"),
            ("NECMAIL_LOG_FORMAT", "xml"),
            ("NECMAIL_PUBLIC_URL", "ftp://x"),
            ("NECMAIL_FROM", "Reports <not an address>"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "DATABASE_URL",
                "NECMAIL_DB_MAX_CONNECTIONS",
                "NECMAIL_LOG_FORMAT",
                "NECMAIL_PUBLIC_URL",
                "NECMAIL_FROM"
            ]
        );
        assert!(err.to_string().contains("\"lots\" is not a whole number"));
    }

    #[test]
    fn config_check_lists_the_variables_in_the_order_they_are_declared() {
        let c = load(&[]).unwrap();
        let listed: Vec<&str> = c.effective.iter().map(|(name, _, _)| *name).collect();
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(listed, declared);
    }

    #[test]
    fn problems_with_variables_that_go_together_are_listed_in_order_with_the_rest() {
        let err = load(&[
            ("NECMAIL_HTTP_ADDR", "nowhere"),
            ("NECMAIL_DKIM_KEY_FILE", "/k.pem"),
            ("NECMAIL_TIMEZONE", "Mars/Base"),
            ("NECMAIL_SECRET_PREVIOUS", "an old secret of some length"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "NECMAIL_SECRET_PREVIOUS",
                "NECMAIL_TIMEZONE",
                "NECMAIL_DKIM_SELECTOR",
                "NECMAIL_HTTP_ADDR"
            ]
        );
    }

    #[test]
    fn schedules_are_read_in_the_configured_time_zone() {
        let c = load(&[("NECMAIL_TIMEZONE", "Europe/Berlin")]).unwrap();
        assert_eq!(c.poll_schedule.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(c.dispatch_schedule.timezone(), chrono_tz::Europe::Berlin);
        let err = load(&[("NECMAIL_DISPATCH_SCHEDULE", "0 0 30 2 *")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NECMAIL_DISPATCH_SCHEDULE: \"0 0 30 2 *\" never fires"
        );
    }

    #[test]
    fn the_helo_name_is_the_senders_domain_unless_set() {
        assert_eq!(load(&[]).unwrap().helo_name, "necmail.localhost");
        let c = load(&[("NECMAIL_HELO_NAME", "mx.example.org")]).unwrap();
        assert_eq!(c.helo_name, "mx.example.org");
    }

    #[test]
    fn the_retry_policy_comes_from_its_three_variables() {
        let c = load(&[
            ("NECMAIL_RETRY_BASE_SECS", "60"),
            ("NECMAIL_RETRY_MAX_ATTEMPTS", "5"),
            ("NECMAIL_RETRY_GIVE_UP_HOURS", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.retry(),
            RetryPolicy {
                base: Duration::from_secs(60),
                max_attempts: 5,
                give_up_after: Duration::from_secs(7200),
            }
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://necmail:hunter2@db:5432/necmail"),
            "postgres://necmail:REDACTED@db:5432/necmail"
        );
        assert_eq!(
            redact_url("sqlite://necmail.db?mode=rwc"),
            "sqlite://necmail.db?mode=rwc"
        );
        let c = load(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("NECMAIL_SECRET", "correct horse battery staple"),
        ])
        .unwrap();
        assert!(
            c.effective
                .iter()
                .all(|(_, v, _)| !v.contains("hunter2") && !v.contains("horse"))
        );
        assert!(
            c.effective
                .iter()
                .any(|(n, v, _)| *n == "NECMAIL_SECRET" && v == "(redacted)")
        );
        let c = load(&[("NECMAIL_SMTP_URL", "smtp://u:hunter2@relay.example:587")]).unwrap();
        assert!(c.effective.iter().all(|(_, v, _)| !v.contains("hunter2")));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_url_never_shows_its_password() {
        for (variable, url) in [
            ("NECMAIL_SMTP_URL", "smtp://mailer:hunter2@relay:notaport"),
            (
                "DATABASE_URL",
                "postgres://necmail:hunter2@db:notaport/necmail",
            ),
            (
                "DATABASE_URL",
                "postgres://necmail:hunter2@db/necmail?sslmode=sometimes",
            ),
        ] {
            let err = load(&[(variable, url)]).unwrap_err();
            assert_eq!(err.0[0].variable, variable, "{url}");
            let shown = err.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            let effective = Config::from_lookup(|k| (k == variable).then(|| url.to_owned()));
            assert!(effective.is_err());
        }
        assert_eq!(
            redact_url("smtp://mailer:hunter2@relay:notaport"),
            "smtp://mailer:REDACTED@relay:notaport"
        );
    }

    #[test]
    fn a_malformed_database_url_is_refused() {
        for url in [
            "postgres://",
            "postgres://db:notaport/x",
            "sqlite://necmail.db?mode=sometimes",
        ] {
            let err = load(&[("DATABASE_URL", url)]).unwrap_err();
            assert_eq!(err.0[0].variable, "DATABASE_URL", "{url}");
        }
        assert!(load(&[("DATABASE_URL", "postgres://u:p@127.0.0.1:5432/necmail")]).is_ok());
    }

    #[test]
    fn the_development_key_may_sign_only_outbox_mail_to_localhost() {
        assert!(load(&[]).unwrap().check_for_sending().is_ok());
        let relay = load(&[("NECMAIL_SMTP_URL", "smtp://127.0.0.1:2525")]).unwrap();
        let err = relay.check_for_sending().unwrap_err();
        assert_eq!(err.0[0].variable, "NECMAIL_SECRET");
        assert!(err.to_string().contains("NECMAIL_SMTP_URL"), "{err}");
        let public = load(&[("NECMAIL_PUBLIC_URL", "https://news.example.org")]).unwrap();
        assert!(public.check_for_sending().is_err());
        let secret = load(&[
            ("NECMAIL_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("NECMAIL_SECRET", "a secret of more than sixteen characters"),
        ])
        .unwrap();
        assert!(secret.check_for_sending().is_ok());
    }

    #[test]
    fn the_previous_secret_needs_a_current_one() {
        let err = load(&[("NECMAIL_SECRET_PREVIOUS", "an old secret of some length")]).unwrap_err();
        assert_eq!(err.0[0].variable, "NECMAIL_SECRET_PREVIOUS");
    }

    #[test]
    fn smtp_urls_parse_with_their_security_and_credentials() {
        let u = SmtpUrl::parse("smtp://mailer:p%40ss@relay.example:587?tls=required").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("relay.example", 587, SmtpTls::Required)
        );
        assert_eq!(
            (
                u.username.as_deref(),
                u.password.as_ref().map(ExposeSecret::expose_secret)
            ),
            (Some("mailer"), Some("p@ss"))
        );
        assert!(!format!("{u:?}").contains("p@ss"));
        let s = SmtpUrl::parse("smtps://relay.example").unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        assert!(
            SmtpUrl::parse("smtp://127.0.0.1:2525")
                .unwrap()
                .is_loopback()
        );
        let plus = SmtpUrl::parse("smtp://mailer:a+b@relay.example").unwrap();
        assert_eq!(
            plus.password.as_ref().map(ExposeSecret::expose_secret),
            Some("a+b")
        );
        assert!(SmtpUrl::parse("http://relay.example").is_err());
        assert!(SmtpUrl::parse("smtp://relay.example?tls=maybe").is_err());
    }

    #[test]
    fn a_bounce_mailbox_needs_credentials_and_tls_off_this_machine() {
        let m = BounceMailbox::parse("imaps://bounces%40nec.example:pa%2Bss@mail.example/Bounces")
            .unwrap();
        assert_eq!(
            (
                m.host.as_str(),
                m.port,
                m.tls,
                m.username.as_str(),
                m.mailbox.as_str()
            ),
            ("mail.example", 993, true, "bounces@nec.example", "Bounces")
        );
        assert_eq!(m.password.expose_secret(), "pa+ss");
        assert!(!format!("{m:?} {m}").contains("pa+ss"));
        assert_eq!(
            m.to_string(),
            "imaps://bounces@nec.example@mail.example:993/Bounces"
        );
        let local = BounceMailbox::parse("imap://u:p@127.0.0.1:1143").unwrap();
        assert_eq!(
            (local.tls, local.port, local.mailbox.as_str()),
            (false, 1143, "INBOX")
        );
        let clear = BounceMailbox::parse("imap://u:hunter2@mail.example/INBOX").unwrap_err();
        assert!(
            clear.contains("unencrypted") && !clear.contains("hunter2"),
            "{clear}"
        );
        assert!(BounceMailbox::parse("imaps://mail.example/INBOX").is_err());
        assert!(BounceMailbox::parse("pop3s://u:p@mail.example").is_err());
        assert!(BounceMailbox::parse("imaps://u:p@mail.example/a%22b").is_err());
        let err = load(&[("NECMAIL_BOUNCE_MAILBOX", "imap://u:hunter2@mail.example")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn dkim_needs_both_a_selector_and_a_key() {
        let err = load(&[("NECMAIL_DKIM_SELECTOR", "nec")]).unwrap_err();
        assert_eq!(err.0[0].variable, "NECMAIL_DKIM_KEY_FILE");
        let c = load(&[
            ("NECMAIL_DKIM_SELECTOR", "nec"),
            ("NECMAIL_DKIM_KEY_FILE", "/k.pem"),
        ])
        .unwrap();
        assert_eq!(c.dkim()[0].domain, "necmail.localhost");
        assert_eq!(c.dkim().len(), 1);
    }

    #[test]
    fn a_bounce_mailbox_poll_takes_500_messages_unless_told_otherwise_and_at_least_one() {
        assert_eq!(load(&[]).unwrap().bounce_poll_max, 500);
        let told = load(&[("NECMAIL_BOUNCE_POLL_MAX", "2")]).unwrap();
        assert_eq!(told.bounce_poll_max, 2);
        for bad in ["0", "100001", "many"] {
            let err = load(&[("NECMAIL_BOUNCE_POLL_MAX", bad)]).unwrap_err();
            assert_eq!(err.0[0].variable, "NECMAIL_BOUNCE_POLL_MAX", "{bad}");
        }
    }

    #[test]
    fn the_feedback_sender_id_is_5_to_15_safe_characters() {
        assert_eq!(load(&[]).unwrap().feedback_sender_id, "necmail");
        for good in ["necmail", "nec-2026", "a.b_c", "fifteen-chars-x"] {
            let c = load(&[("NECMAIL_FEEDBACK_SENDER_ID", good)]).unwrap();
            assert_eq!(c.feedback_sender_id, good);
        }
        for bad in ["nec", "sixteen-chars-xx", "nec:mail", "nec mail", "necmäil"] {
            let err = load(&[("NECMAIL_FEEDBACK_SENDER_ID", bad)]).unwrap_err();
            assert_eq!(err.0[0].variable, "NECMAIL_FEEDBACK_SENDER_ID", "{bad}");
        }
    }

    #[test]
    fn a_second_dkim_key_needs_its_own_selector_and_a_first_key() {
        let err = load(&[("NECMAIL_DKIM_SELECTOR_2", "ed")]).unwrap_err();
        let named: Vec<&str> = err.0.iter().map(|p| p.variable).collect();
        assert_eq!(
            named,
            ["NECMAIL_DKIM_SELECTOR_2", "NECMAIL_DKIM_KEY_FILE_2"]
        );
        let err = load(&[
            ("NECMAIL_DKIM_SELECTOR", "nec"),
            ("NECMAIL_DKIM_KEY_FILE", "/rsa.pem"),
            ("NECMAIL_DKIM_SELECTOR_2", "nec"),
            ("NECMAIL_DKIM_KEY_FILE_2", "/ed.pem"),
        ])
        .unwrap_err();
        assert_eq!(err.0[0].variable, "NECMAIL_DKIM_SELECTOR_2");
        assert!(err.0[0].reason.contains("differ"), "{err}");
        let c = load(&[
            ("NECMAIL_DKIM_SELECTOR", "rsa"),
            ("NECMAIL_DKIM_KEY_FILE", "/rsa.pem"),
            ("NECMAIL_DKIM_SELECTOR_2", "ed"),
            ("NECMAIL_DKIM_KEY_FILE_2", "/ed.pem"),
        ])
        .unwrap();
        let selectors: Vec<String> = c.dkim().into_iter().map(|d| d.selector).collect();
        assert_eq!(selectors, ["rsa", "ed"]);
    }

    #[test]
    fn a_sender_parses_with_or_without_a_name() {
        assert_eq!(
            Sender::parse("\"NEC Rep\" <Rep@Example.org>")
                .unwrap()
                .to_string(),
            "NEC Rep <Rep@example.org>"
        );
        assert_eq!(Sender::parse("rep@example.org").unwrap().name, None);
        assert!(Sender::parse("Rep <rep@example.org").is_err());
    }

    #[test]
    fn feed_fetches_refuse_private_addresses_unless_allowed_in_so_many_words() {
        assert!(!load(&[]).unwrap().feed_allow_private);
        let allowed = load(&[("NECMAIL_FEED_ALLOW_PRIVATE", "true")]).unwrap();
        assert!(allowed.feed_allow_private);
        let refused = load(&[("NECMAIL_FEED_ALLOW_PRIVATE", "false")]).unwrap();
        assert!(!refused.feed_allow_private);
        let err = load(&[("NECMAIL_FEED_ALLOW_PRIVATE", "yes")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "NECMAIL_FEED_ALLOW_PRIVATE: \"yes\" is not true or false"
        );
    }

    #[test]
    fn the_env_example_is_a_dotenv_file_that_sets_every_variable_to_its_default() {
        let example = include_str!("../.env.example");
        let set: HashMap<String, String> = dotenvy::from_read_iter(example.as_bytes())
            .collect::<Result<_, _>>()
            .expect(".env.example parses as a .env file");
        for var in VARIABLES {
            match var.default {
                Some(default) => assert_eq!(
                    set.get(var.name).map(String::as_str),
                    Some(default),
                    "{}",
                    var.name
                ),
                None => {
                    assert!(!set.contains_key(var.name), "{} is set", var.name);
                    let unset = format!("# {}=", var.name);
                    assert!(
                        example.lines().any(|l| l.trim() == unset),
                        ".env.example lacks the line {unset:?}"
                    );
                }
            }
        }
        assert!(Config::from_lookup(|name| set.get(name).cloned()).is_ok());
    }
}
