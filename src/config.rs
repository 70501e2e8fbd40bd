//! Configuration from the environment (and an optional `.env` file).
//!
//! Every variable is listed in [`VARIABLES`] with its default; `.env.example`
//! documents the same list (a test keeps the two in step).

use std::fmt;
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

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Variable {
    Variable {
        name,
        default,
        help,
        secret: false,
    }
}

pub const VARIABLES: &[Variable] = &[
    var(
        "DATABASE_URL",
        Some(DEFAULT_DATABASE_URL),
        "Where necmail keeps its data: sqlite://FILE?mode=rwc or postgres://USER:PASS@HOST:PORT/DB.",
    ),
    var(
        "NECMAIL_DB_MAX_CONNECTIONS",
        Some("5"),
        "How many database connections each necmail process opens at most.",
    ),
    var(
        "NECMAIL_LOG",
        None,
        "Log filter, e.g. info or info,necmail=debug. Unset: info for serve, warn otherwise.",
    ),
    var(
        "NECMAIL_LOG_FORMAT",
        Some("text"),
        "Log format on stderr: text or json.",
    ),
    var(
        "NECMAIL_PUBLIC_URL",
        Some("http://127.0.0.1:8080"),
        "The address people reach necmail's pages at; every link in every email starts with it.",
    ),
    var(
        "NECMAIL_FROM",
        Some("NEC Report <reports@necmail.localhost>"),
        "The From of every email. Its domain also names Message-IDs, List-Id and bounce addresses.",
    ),
    Variable {
        name: "NECMAIL_SECRET",
        default: None,
        help: "The key that signs every link in every email. Unset: an insecure development key, refused by \
               `serve` unless NECMAIL_PUBLIC_URL is on localhost, and by every command that sends \
               through an SMTP relay.",
        secret: true,
    },
    Variable {
        name: "NECMAIL_SECRET_PREVIOUS",
        default: None,
        help: "The secret before the last rotation: links signed with it keep working, new links use \
               NECMAIL_SECRET. Unset: only NECMAIL_SECRET is accepted.",
        secret: true,
    },
    var(
        "NECMAIL_PREFERENCES_LINK_DAYS",
        Some("60"),
        "Days a preferences link (change lists, download or erase one's data) works; an expired one \
         offers to email a fresh link. Unsubscribe links never expire.",
    ),
    var(
        "NECMAIL_TEMPLATES_DIR",
        None,
        "A folder whose templates override the built-in ones (same relative paths).",
    ),
    var(
        "NECMAIL_OUTBOX_DIR",
        Some("outbox"),
        "Where mail is written as .eml files when no SMTP relay is configured.",
    ),
    var(
        "NECMAIL_FEED_TIMEOUT_SECS",
        Some("20"),
        "How long one feed or page fetch may take.",
    ),
    var(
        "NECMAIL_FEED_MAX_BYTES",
        Some("5000000"),
        "The largest feed or page necmail reads; larger ones are refused.",
    ),
    var(
        "NECMAIL_FEED_ALLOW_PRIVATE",
        Some("false"),
        "true lets feed and page fetches connect to loopback, private, link-local and other \
         addresses that are not globally routable (an intranet blog); false refuses them.",
    ),
    var(
        "NECMAIL_TIMEZONE",
        Some("Europe/London"),
        "The time zone of schedules and of times typed at the command line (an IANA name).",
    ),
    Variable {
        name: "NECMAIL_SMTP_URL",
        default: None,
        help: "The SMTP relay: smtp://[user:pass@]host[:port][?tls=required] (STARTTLS) or smtps://… \
               (implicit TLS). Unset: mail goes to the outbox folder.",
        secret: false,
    },
    var(
        "NECMAIL_SMTP_CONNECTIONS",
        Some("4"),
        "How many SMTP connections each necmail process keeps open at most.",
    ),
    var(
        "NECMAIL_SMTP_TIMEOUT_SECS",
        Some("60"),
        "How long one SMTP command may take before the connection is dropped.",
    ),
    var(
        "NECMAIL_HELO_NAME",
        None,
        "The name necmail gives in EHLO. Unset: the domain of NECMAIL_FROM.",
    ),
    var(
        "NECMAIL_SEND_RATE",
        Some("0"),
        "Messages per second each necmail process sends at most; 0 is unlimited.",
    ),
    var(
        "NECMAIL_LEASE_SECS",
        Some("120"),
        "How long a claimed delivery is held before another worker may retry it.",
    ),
    var(
        "NECMAIL_RETRY_BASE_SECS",
        Some("300"),
        "The first retry delay after a temporary failure; it doubles each time.",
    ),
    var(
        "NECMAIL_RETRY_MAX_ATTEMPTS",
        Some("20"),
        "Attempts before a deferred message is given up as failed.",
    ),
    var(
        "NECMAIL_RETRY_GIVE_UP_HOURS",
        Some("72"),
        "Age after which a deferred message is given up as failed.",
    ),
    var(
        "NECMAIL_MAX_CONSECUTIVE_FAILURES",
        Some("50"),
        "Failures in a row after which a campaign pauses itself (the relay is down or refusing us).",
    ),
    var(
        "NECMAIL_HTTP_ADDR",
        Some("127.0.0.1:8080"),
        "The address and port `serve` listens on for the web pages.",
    ),
    var(
        "NECMAIL_HTTP_HEADER_TIMEOUT_SECS",
        Some("10"),
        "How long a client has to send a request's headers, counted from when the server waits for \
         them: on a new connection, and between requests on a kept-alive one (the keep-alive idle timeout).",
    ),
    var(
        "NECMAIL_HTTP_BODY_TIMEOUT_SECS",
        Some("10"),
        "How long a client has to send a request's body once its headers are in.",
    ),
    var(
        "NECMAIL_HTTP_MAX_CONNECTIONS",
        None,
        "How many connections the web pages serve at once; more wait to be accepted. Unset: the \
         open-file limit (ulimit -n) less a reserve for the database, SMTP and files, at most 4096.",
    ),
    var(
        "NECMAIL_METRICS_ADDR",
        Some("127.0.0.1:9187"),
        "The address and port of the Prometheus /metrics listener, kept off the public pages; \
         off: no metrics listener.",
    ),
    var(
        "NECMAIL_SPOOL_DIR",
        Some("spool"),
        "Where a one-click unsubscribe is kept, on disk, when the database cannot take it; \
         it is applied as soon as the database is back.",
    ),
    var(
        "NECMAIL_TRUSTED_PROXIES",
        None,
        "Comma-separated IP addresses of reverse proxies whose X-Forwarded-For is believed. \
         Unset: the socket's peer address is the client's.",
    ),
    var(
        "NECMAIL_ALLOWED_ORIGINS",
        None,
        "Comma-separated origins (https://blog.example) whose pages may POST /subscribe as JSON. \
         Unset: none.",
    ),
    var(
        "NECMAIL_CONSENT_VERSION",
        Some("subscribe-form-v1"),
        "Stored with each consent given on the subscribe form; change it when you change the wording.",
    ),
    var(
        "NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR",
        Some("20"),
        "Subscribe requests one IP address may make per hour.",
    ),
    var(
        "NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY",
        Some("3"),
        "Confirmation emails one address may be sent per day.",
    ),
    var(
        "NECMAIL_CONFIRMATIONS_PER_HOUR",
        Some("500"),
        "Confirmation emails sent per hour at most, for every address together; past it, \
         confirmations wait their turn (stored, never dropped).",
    ),
    var(
        "NECMAIL_POLL_SCHEDULE",
        Some("*/15 * * * *"),
        "When `serve` polls the feed sources: a crontab line (5 fields, or 6 with seconds).",
    ),
    var(
        "NECMAIL_DISPATCH_SCHEDULE",
        Some("0 9 * * *"),
        "The dispatch window: a report found by a poll is sent at the next time this fires.",
    ),
    var(
        "NECMAIL_DEFAULT_LISTS",
        None,
        "Comma-separated lists a new report goes to when its source names none. \
         Unset: such reports get no campaign (a warning is logged).",
    ),
    var(
        "NECMAIL_AUTO_DISPATCH",
        Some("schedule"),
        "schedule: a new report's campaign starts at the next dispatch window; \
         hold: it waits for `necmail campaign approve ID`.",
    ),
    var(
        "NECMAIL_REPORT_OVERDUE_DAYS",
        Some("14"),
        "Days after a meeting with no report before `serve` warns the admin.",
    ),
    var(
        "NECMAIL_ADMIN_EMAIL",
        None,
        "Where `serve` mails warnings (an overdue report). Unset: they are only logged.",
    ),
    var(
        "NECMAIL_DKIM_SELECTOR",
        None,
        "DKIM selector; with the two below, every message is signed.",
    ),
    var(
        "NECMAIL_DKIM_DOMAIN",
        None,
        "DKIM signing domain (d=). Unset with a selector: the domain of NECMAIL_FROM.",
    ),
    var(
        "NECMAIL_DKIM_KEY_FILE",
        None,
        "DKIM private key: RSA of 2048-4096 bits (PKCS#1 or PKCS#8 PEM) or Ed25519 (PKCS#8 PEM).",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
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
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let username = (!url.username().is_empty())
            .then(|| decode(url.username()))
            .flatten();
        let password = url.password().and_then(decode).map(SecretString::from);
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

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub db_max_connections: u32,
    pub log_filter: Option<String>,
    pub log_format: LogFormat,
    pub public_url: url::Url,
    pub from: Sender,
    /// `None` when NECMAIL_SECRET is unset: see [`Config::signer`].
    pub secret: Option<SecretString>,
    /// NECMAIL_SECRET_PREVIOUS: still accepted, never used to sign.
    pub secret_previous: Option<SecretString>,
    /// How long a preferences link works.
    pub preferences_link_lifetime: Duration,
    pub templates_dir: Option<PathBuf>,
    pub outbox_dir: PathBuf,
    pub feed_timeout: Duration,
    pub feed_max_bytes: u64,
    /// Whether fetches may connect to addresses that are not globally routable.
    pub feed_allow_private: bool,
    pub timezone: chrono_tz::Tz,
    pub smtp: Option<SmtpUrl>,
    pub smtp_connections: usize,
    pub smtp_timeout: Duration,
    pub helo_name: String,
    /// Messages per second per process; 0 is unlimited.
    pub send_rate: u32,
    pub lease: Duration,
    pub retry: RetryPolicy,
    pub max_consecutive_failures: u32,
    pub dkim: Option<DkimSettings>,
    pub http_addr: std::net::SocketAddr,
    /// The header read timeout, also the keep-alive idle timeout.
    pub http_header_timeout: Duration,
    pub http_body_timeout: Duration,
    /// `None`: derived from the open-file limit (see [`crate::web`]).
    pub http_max_connections: Option<usize>,
    /// `None`: no metrics listener.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub spool_dir: PathBuf,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins allowed to POST /subscribe cross-site, as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    pub consent_version: String,
    pub subscribe_per_ip_per_hour: u32,
    pub confirmations_per_address_per_day: u32,
    pub confirmations_per_hour: u32,
    pub poll_schedule: Schedule,
    pub dispatch_schedule: Schedule,
    pub default_lists: Vec<crate::lists::ListSlug>,
    pub auto_dispatch: AutoDispatch,
    pub report_overdue_days: u32,
    pub admin_email: Option<crate::subscribers::SubscriberEmail>,
    /// Each variable with its effective value (secrets redacted) and whether
    /// it was set, in [`VARIABLES`] order: what `config check` prints.
    pub effective: Vec<(&'static str, String, Source)>,
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
    fn variable(name: &str) -> &'static Variable {
        VARIABLES
            .iter()
            .find(|v| v.name == name)
            .expect("every variable read is listed in VARIABLES")
    }

    /// Reads `name` (or its default) and parses it; a parse failure is
    /// recorded and `fallback` used so the other variables are still checked.
    fn get<T>(
        &mut self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
        fallback: T,
    ) -> T
    where
        T: Clone,
    {
        let var = Self::variable(name);
        let set = (self.lookup)(name).filter(|v| !v.trim().is_empty());
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
        self.effective.push((name, shown, source));
        let Some(raw) = raw else { return fallback };
        match parse(raw.trim()) {
            Ok(v) => v,
            Err(reason) => {
                self.problems.push(Problem {
                    variable: name,
                    reason,
                });
                fallback
            }
        }
    }

    fn optional(&mut self, name: &'static str) -> Option<String> {
        self.get(name, |v| Ok(Some(v.to_owned())), None)
    }
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

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut l = Loader {
            lookup,
            problems: Vec::new(),
            effective: Vec::new(),
        };
        let database_url = l.get(
            "DATABASE_URL",
            DatabaseUrl::parse,
            DatabaseUrl::parse(DEFAULT_DATABASE_URL).expect("the default is valid"),
        );
        let db_max_connections = l.get("NECMAIL_DB_MAX_CONNECTIONS", whole_number(1, 1000), 5);
        let log_filter = l.get(
            "NECMAIL_LOG",
            |v| match tracing_subscriber::EnvFilter::try_new(v) {
                Ok(_) => Ok(Some(v.to_owned())),
                Err(e) => Err(format!("{v:?} is not a log filter: {e}")),
            },
            None,
        );
        let log_format = l.get(
            "NECMAIL_LOG_FORMAT",
            |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("{other:?} is not text or json")),
            },
            LogFormat::Text,
        );
        let fallback_url = url::Url::parse("http://127.0.0.1:8080").expect("a valid URL");
        let public_url = l.get(
            "NECMAIL_PUBLIC_URL",
            |v| {
                let url = url::Url::parse(v).map_err(|e| format!("{v:?} is not a URL: {e}"))?;
                match url.scheme() {
                    "http" | "https" if url.host().is_some() => Ok(url),
                    _ => Err(format!(
                        "{v:?} must be an http:// or https:// URL with a host"
                    )),
                }
            },
            fallback_url,
        );
        let fallback_sender = Sender {
            name: None,
            address: "reports@necmail.localhost".into(),
        };
        let from = l.get(
            "NECMAIL_FROM",
            |v| Sender::parse(v).map_err(|e| format!("{v:?} is not Name <address>: {e}")),
            fallback_sender,
        );
        let secret = l.get("NECMAIL_SECRET", parse_secret, None);
        let secret_previous = l.get("NECMAIL_SECRET_PREVIOUS", parse_secret, None);
        if secret_previous.is_some() && secret.is_none() {
            l.problems.push(Problem {
                variable: "NECMAIL_SECRET_PREVIOUS",
                reason: "it only makes sense with NECMAIL_SECRET, the secret that replaced it"
                    .into(),
            });
        }
        let preferences_link_lifetime = Duration::from_secs(
            24 * 3600 * l.get::<u64>("NECMAIL_PREFERENCES_LINK_DAYS", whole_number(1, 3650), 60),
        );
        let templates_dir = l.optional("NECMAIL_TEMPLATES_DIR").map(PathBuf::from);
        let outbox_dir = l.get(
            "NECMAIL_OUTBOX_DIR",
            |v| Ok(PathBuf::from(v)),
            PathBuf::from("outbox"),
        );
        let feed_timeout =
            Duration::from_secs(l.get("NECMAIL_FEED_TIMEOUT_SECS", whole_number(1, 600), 20));
        let feed_max_bytes = l.get(
            "NECMAIL_FEED_MAX_BYTES",
            whole_number(1024, 1 << 30),
            5_000_000,
        );
        let feed_allow_private = l.get(
            "NECMAIL_FEED_ALLOW_PRIVATE",
            |v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(format!("{other:?} is not true or false")),
            },
            false,
        );

        let timezone = l.get(
            "NECMAIL_TIMEZONE",
            |v| {
                v.parse::<chrono_tz::Tz>()
                    .map_err(|_| format!("{v:?} is not a time zone such as Europe/London"))
            },
            chrono_tz::Europe::London,
        );
        let smtp = l.get("NECMAIL_SMTP_URL", |v| SmtpUrl::parse(v).map(Some), None);
        let smtp_connections = l.get("NECMAIL_SMTP_CONNECTIONS", whole_number(1, 256), 4);
        let smtp_timeout =
            Duration::from_secs(l.get("NECMAIL_SMTP_TIMEOUT_SECS", whole_number(1, 600), 60));
        let helo_name = l
            .optional("NECMAIL_HELO_NAME")
            .unwrap_or_else(|| from.domain().to_owned());
        let send_rate = l.get("NECMAIL_SEND_RATE", whole_number(0, 1_000_000), 0);
        let lease = Duration::from_secs(l.get("NECMAIL_LEASE_SECS", whole_number(1, 86_400), 120));
        let retry = RetryPolicy {
            base: Duration::from_secs(l.get(
                "NECMAIL_RETRY_BASE_SECS",
                whole_number(1, 86_400),
                300,
            )),
            max_attempts: l.get("NECMAIL_RETRY_MAX_ATTEMPTS", whole_number(1, 1000), 20),
            give_up_after: Duration::from_secs(
                3600 * l.get::<u64>("NECMAIL_RETRY_GIVE_UP_HOURS", whole_number(1, 24 * 30), 72),
            ),
        };
        let max_consecutive_failures = l.get(
            "NECMAIL_MAX_CONSECUTIVE_FAILURES",
            whole_number(1, 1_000_000),
            50,
        );
        let dkim_selector = l.optional("NECMAIL_DKIM_SELECTOR");
        let dkim_domain = l.optional("NECMAIL_DKIM_DOMAIN");
        let dkim_key = l.optional("NECMAIL_DKIM_KEY_FILE").map(PathBuf::from);
        let dkim = match (dkim_selector, dkim_key) {
            (Some(selector), Some(key_file)) => Some(DkimSettings {
                selector,
                domain: dkim_domain.unwrap_or_else(|| from.domain().to_owned()),
                key_file,
            }),
            (None, None) => None,
            (Some(_), None) => {
                l.problems.push(Problem {
                    variable: "NECMAIL_DKIM_KEY_FILE",
                    reason: "it is needed when NECMAIL_DKIM_SELECTOR is set".into(),
                });
                None
            }
            (None, Some(_)) => {
                l.problems.push(Problem {
                    variable: "NECMAIL_DKIM_SELECTOR",
                    reason: "it is needed when NECMAIL_DKIM_KEY_FILE is set".into(),
                });
                None
            }
        };

        let http_addr = l.get(
            "NECMAIL_HTTP_ADDR",
            |v| {
                v.parse::<std::net::SocketAddr>()
                    .map_err(|_| format!("{v:?} is not an address and port such as 127.0.0.1:8080"))
            },
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        );
        let http_header_timeout = Duration::from_secs(l.get(
            "NECMAIL_HTTP_HEADER_TIMEOUT_SECS",
            whole_number(1, 3600),
            10,
        ));
        let http_body_timeout =
            Duration::from_secs(l.get("NECMAIL_HTTP_BODY_TIMEOUT_SECS", whole_number(1, 3600), 10));
        let http_max_connections = l.get(
            "NECMAIL_HTTP_MAX_CONNECTIONS",
            |v| whole_number(1, 1_000_000)(v).map(Some),
            None,
        );
        let metrics_addr = l.get(
            "NECMAIL_METRICS_ADDR",
            |v| match v {
                "off" => Ok(None),
                v => v.parse::<std::net::SocketAddr>().map(Some).map_err(|_| {
                    format!("{v:?} is not off or an address and port such as 127.0.0.1:9187")
                }),
            },
            None,
        );
        let spool_dir = l.get(
            "NECMAIL_SPOOL_DIR",
            |v| Ok(PathBuf::from(v)),
            PathBuf::from("spool"),
        );
        let trusted_proxies = l.get(
            "NECMAIL_TRUSTED_PROXIES",
            |v| {
                comma_list(v)
                    .map(|ip| {
                        ip.parse::<std::net::IpAddr>()
                            .map_err(|_| format!("{ip:?} is not an IP address"))
                    })
                    .collect()
            },
            Vec::new(),
        );
        let allowed_origins = l.get(
            "NECMAIL_ALLOWED_ORIGINS",
            |v| {
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
            },
            Vec::new(),
        );
        let consent_version = l.get(
            "NECMAIL_CONSENT_VERSION",
            |v| {
                if v.len() <= 100 && !v.chars().any(char::is_control) {
                    Ok(v.to_owned())
                } else {
                    Err("it must be one line of at most 100 characters".into())
                }
            },
            "subscribe-form-v1".to_owned(),
        );
        let subscribe_per_ip_per_hour = l.get(
            "NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR",
            whole_number(1, 1_000_000),
            20,
        );
        let confirmations_per_address_per_day = l.get(
            "NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY",
            whole_number(1, 1000),
            3,
        );
        let confirmations_per_hour = l.get(
            "NECMAIL_CONFIRMATIONS_PER_HOUR",
            whole_number(1, 1_000_000),
            500,
        );
        let fallback_schedule = Schedule::parse("0 9 * * *", timezone).expect("a valid schedule");
        let poll_schedule = l.get(
            "NECMAIL_POLL_SCHEDULE",
            |v| Schedule::parse(v, timezone).map_err(|e| e.to_string()),
            fallback_schedule.clone(),
        );
        let dispatch_schedule = l.get(
            "NECMAIL_DISPATCH_SCHEDULE",
            |v| Schedule::parse(v, timezone).map_err(|e| e.to_string()),
            fallback_schedule,
        );
        let default_lists = l.get(
            "NECMAIL_DEFAULT_LISTS",
            |v| {
                comma_list(v)
                    .map(|s| crate::lists::ListSlug::parse(s).map_err(|e| format!("{s:?}: {e}")))
                    .collect()
            },
            Vec::new(),
        );
        let auto_dispatch = l.get(
            "NECMAIL_AUTO_DISPATCH",
            |v| match v {
                "schedule" => Ok(AutoDispatch::Schedule),
                "hold" => Ok(AutoDispatch::Hold),
                other => Err(format!("{other:?} is not schedule or hold")),
            },
            AutoDispatch::Schedule,
        );
        let report_overdue_days = l.get("NECMAIL_REPORT_OVERDUE_DAYS", whole_number(1, 365), 14);
        let admin_email = l.get(
            "NECMAIL_ADMIN_EMAIL",
            |v| {
                crate::subscribers::SubscriberEmail::parse(v)
                    .map(Some)
                    .map_err(|e| e.to_string())
            },
            None,
        );
        if !l.problems.is_empty() {
            return Err(ConfigError(l.problems));
        }
        Ok(Config {
            database_url,
            db_max_connections,
            log_filter,
            log_format,
            public_url,
            from,
            secret,
            secret_previous,
            preferences_link_lifetime,
            templates_dir,
            outbox_dir,
            feed_timeout,
            feed_max_bytes,
            feed_allow_private,
            timezone,
            smtp,
            smtp_connections,
            smtp_timeout,
            helo_name,
            send_rate,
            lease,
            retry,
            max_consecutive_failures,
            dkim,
            http_addr,
            http_header_timeout,
            http_body_timeout,
            http_max_connections,
            metrics_addr,
            spool_dir,
            trusted_proxies,
            allowed_origins,
            consent_version,
            subscribe_per_ip_per_hour,
            confirmations_per_address_per_day,
            confirmations_per_hour,
            poll_schedule,
            dispatch_schedule,
            default_lists,
            auto_dispatch,
            report_overdue_days,
            admin_email,
            effective: l.effective,
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

    /// The absolute URL of a path on necmail's public site.
    pub fn public_link(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.public_url.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
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

fn parse_secret(v: &str) -> Result<Option<SecretString>, String> {
    if v.len() < 16 {
        Err("it must be at least 16 characters; `openssl rand -hex 32` makes a good one".into())
    } else {
        Ok(Some(SecretString::from(v)))
    }
}

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
        assert!(SmtpUrl::parse("http://relay.example").is_err());
        assert!(SmtpUrl::parse("smtp://relay.example?tls=maybe").is_err());
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
        assert_eq!(c.dkim.unwrap().domain, "necmail.localhost");
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
    fn the_env_example_documents_every_variable_with_its_default() {
        let example = include_str!("../.env.example");
        for var in VARIABLES {
            let line = match var.default {
                Some(default) => format!("{}={}", var.name, default),
                None => format!("# {}=", var.name),
            };
            assert!(
                example.lines().any(|l| l.trim() == line),
                ".env.example lacks the line {line:?}"
            );
        }
    }
}
