//! Inbound mail at the command line: `necmail receive` (a Postfix
//! `pipe(8)` transport, `.forward` or procmail), and what it recorded:
//! `bounces ls`, `events ls` and `suppression ls|add|rm`.

use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};

use super::subscribers::parse_email;
use super::{CliError, CliResult, output};
use crate::config::Config;
use crate::delivery::Sending;
use crate::feedback::{Event, EventFilter, EventKind, EventSource, SuppressionEntry};
use crate::inbound::mailbox::Mailbox;
use crate::inbound::{Handler, InboundError, Incoming};
use crate::store::Store;
use crate::subscribers::{SubscriberEmail, SuppressionReason};

/// How many rows a listing shows unless told.
const DEFAULT_LIMIT: i64 = 1000;
/// Suppressions fetched at once by `suppression ls`.
const SUPPRESSIONS_PAGE: i64 = 1000;

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// A recipient (repeat for each): an address of ours, such as
    /// news-join@DOMAIN or bounce+TOKEN@DOMAIN.
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    /// The envelope sender (Postfix: ${sender}); empty for a bounce.
    /// Unset: the message's Return-Path.
    #[arg(long = "from")]
    from: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// The bounces recorded, newest first.
    Ls {
        /// Only the bounces of this campaign.
        #[arg(long)]
        campaign: Option<i64>,
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Poll the bounce mailbox (NECMAIL_BOUNCE_MAILBOX) once, as `serve`
    /// does on NECMAIL_BOUNCE_POLL_SCHEDULE, and say how many messages were
    /// handled.
    Poll {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// What happened to addresses (joins, leaves, bounces, complaints,
    /// suppressions), newest first.
    Ls {
        /// Only this address's events.
        #[arg(long, value_parser = parse_email)]
        email: Option<SubscriberEmail>,
        /// Only events of this kind (repeat for several).
        #[arg(long, value_parser = parse_kind)]
        kind: Vec<EventKind>,
        /// Only events at or after this day (YYYY-MM-DD) or time (RFC 3339).
        #[arg(long, value_parser = parse_since)]
        since: Option<DateTime<Utc>>,
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// Every suppressed address, newest first (the hash alone once the
    /// subscriber is gone).
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address: no mail goes to it and no import adds it.
    Add {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
        /// unsubscribed, hard-bounce or complaint.
        #[arg(long, default_value = "hard-bounce", value_parser = parse_reason)]
        reason: SuppressionReason,
        /// Why, in words, for the record.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Lift an address's suppression; the reason is recorded.
    Rm {
        #[arg(value_parser = parse_email)]
        email: SubscriberEmail,
        /// Why it is lifted, for the record (required).
        #[arg(long)]
        reason: String,
    },
}

fn parse_kind(s: &str) -> Result<EventKind, String> {
    s.parse()
        .map_err(|e: crate::error::UnknownName| e.to_string())
}

fn parse_reason(s: &str) -> Result<SuppressionReason, String> {
    match s.parse() {
        Ok(SuppressionReason::Erased) => {
            Err("erased is for `subscriber rm --erase`, which also deletes the data".into())
        }
        other => other.map_err(|e: crate::error::UnknownName| e.to_string()),
    }
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("{s:?} is not a day (YYYY-MM-DD) or an RFC 3339 time"))
}

/// `necmail receive`: the message on stdin, handled for each `--to`. The
/// exit code follows sysexits, as Postfix reads it: 0 accepted, 67 unknown
/// address, 65 unparsable or too large, 75 a temporary failure.
pub async fn receive(args: ReceiveArgs, store: Arc<dyn Store>, config: &Config) -> CliResult {
    let temporary = |e: String| InboundError::Unavailable(crate::error::StoreError::Unavailable(e));
    config
        .check_for_sending()
        .map_err(|e| temporary(e.to_string()))?;
    let sending = Sending::new(Arc::new(config.clone())).map_err(|e| temporary(e.to_string()))?;
    let handler = Handler::new(store, &sending, EventSource::Email);
    let mut recipients = Vec::with_capacity(args.to.len());
    for to in &args.to {
        recipients.push(handler.recipient(to).await?);
    }
    let limit = config.inbound_max_bytes;
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| temporary(format!("reading the message failed: {e}")))?;
    if raw.len() > limit {
        return Err(InboundError::TooBig(limit).into());
    }
    let incoming = Incoming::parse(&raw, args.from.as_deref())?;
    for recipient in &recipients {
        handler.deliver(&incoming, recipient).await?;
    }
    Ok(())
}

pub async fn bounces(command: BouncesCommand, store: Arc<dyn Store>, config: &Config) -> CliResult {
    let (campaign, limit, json) = match command {
        BouncesCommand::Ls {
            campaign,
            limit,
            json,
        } => (campaign, limit, json),
        BouncesCommand::Poll { json } => return poll_mailbox(store, config, json).await,
    };
    let events = store
        .events(&EventFilter {
            kinds: vec![EventKind::Bounce, EventKind::SoftBounce],
            campaign_id: campaign,
            limit,
            ..EventFilter::default()
        })
        .await?;
    show_events(&events, json, config)
}

/// `bounces poll`: one poll of the bounce mailbox.
async fn poll_mailbox(store: Arc<dyn Store>, config: &Config, json: bool) -> CliResult {
    config.check_for_sending()?;
    let sending = Sending::new(Arc::new(config.clone()))?;
    let handler = Handler::new(store, &sending, EventSource::Mailbox);
    let polled = Mailbox::new(handler, config)?.poll().await?;
    if json {
        return Ok(output::json(&[polled])?);
    }
    println!(
        "{} handled, {} left in the mailbox (they cannot be read), {} waiting for the next poll",
        polled.handled, polled.rejected, polled.waiting
    );
    Ok(())
}

pub async fn events(command: EventsCommand, store: &dyn Store, config: &Config) -> CliResult {
    let EventsCommand::Ls {
        email,
        kind,
        since,
        limit,
        json,
    } = command;
    let events = store
        .events(&EventFilter {
            email,
            kinds: kind,
            since,
            limit,
            campaign_id: None,
            before: None,
        })
        .await?;
    show_events(&events, json, config)
}

fn show_events(events: &[Event], json: bool, config: &Config) -> CliResult {
    if json {
        return Ok(output::json(events)?);
    }
    let id = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                output::local_time(e.at, config.timezone),
                e.kind.to_string(),
                e.source.to_string(),
                e.email.clone().unwrap_or_else(|| "(removed)".into()),
                id(e.campaign_id),
                e.status.clone().unwrap_or_default(),
                e.reason.chars().take(80).collect(),
            ]
        })
        .collect();
    Ok(output::table(
        &[
            "AT", "KIND", "SOURCE", "EMAIL", "CAMPAIGN", "STATUS", "REASON",
        ],
        &rows,
    )?)
}

pub async fn suppression(
    command: SuppressionCommand,
    store: &dyn Store,
    config: &Config,
) -> CliResult {
    match command {
        SuppressionCommand::Ls { json } => {
            let mut entries = Vec::new();
            loop {
                let last = entries
                    .last()
                    .map(|e: &SuppressionEntry| (e.at, e.email_hash.as_str()));
                let page = store.suppressions(last, SUPPRESSIONS_PAGE).await?;
                let done = (page.len() as i64) < SUPPRESSIONS_PAGE;
                entries.extend(page);
                if done {
                    break;
                }
            }
            if json {
                return Ok(output::json(&entries)?);
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|s| {
                    vec![
                        s.email.clone().unwrap_or_else(|| {
                            format!("(hash {})", s.email_hash.get(..12).unwrap_or(&s.email_hash))
                        }),
                        s.reason.to_string(),
                        output::local_time(s.at, config.timezone),
                    ]
                })
                .collect();
            Ok(output::table(&["EMAIL", "REASON", "SINCE"], &rows)?)
        }
        SuppressionCommand::Add {
            email,
            reason,
            note,
        } => {
            store
                .add_suppression(&email, reason, note.trim(), EventSource::Cli)
                .await?;
            println!("{email} is suppressed ({reason})");
            Ok(())
        }
        SuppressionCommand::Rm { email, reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(CliError::BadInput(
                    "--reason must say why the suppression is lifted".into(),
                ));
            }
            if store
                .remove_suppression(&email, reason, EventSource::Cli)
                .await?
            {
                println!("{email} is no longer suppressed");
                Ok(())
            } else {
                Err(CliError::BadInput(format!("{email} is not suppressed")))
            }
        }
    }
}
