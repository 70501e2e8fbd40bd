//! `necmail campaign …`: create, start, watch and steer campaigns.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Subcommand};
use tokio::sync::watch;

use super::output::{self, stdout};
use super::progress::Progress;
use super::{CliError, CliResult};
use crate::campaigns::{
    self, Campaign, CampaignState, CreateError, DeliveryState, NewCampaign, Start, excerpt_refusal,
    human_duration, parse_at,
};
use crate::config::Config;
use crate::delivery::Sending;
use crate::delivery::engine::Finish;
use crate::lists::ListSlug;
use crate::reports::ReportRef;
use crate::store::Store;
use crate::subscribers::{AttributePair, spreadsheet};

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign: a report, to lists, now, later or as a draft.
    Create(CreateArgs),
    /// Show every campaign.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Counts by delivery state, the current rate, an ETA and the last errors.
    Status {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Start a campaign. With --wait, send it from this process until it is
    /// done (exit 0), stopped by a signal (exit 0: it carries on at the next
    /// send), or paused, cancelled or unable to go on (exit 1, with why).
    /// A campaign with nobody to send to is not started (exit 2, with why).
    Send {
        id: i64,
        #[arg(long)]
        wait: bool,
    },
    /// Let a held campaign go: it starts at its time, or at once when it has
    /// none or its time has passed.
    Approve { id: i64 },
    /// Stop sending for now; `resume` carries on.
    Pause { id: i64 },
    /// Carry on sending a paused campaign.
    Resume { id: i64 },
    /// Stop for good: deliveries not yet sent are skipped.
    Cancel { id: i64 },
    /// Who got it: each recipient, their delivery's state, attempts and the
    /// relay's last reply.
    Deliveries {
        id: i64,
        /// Only deliveries in this state: queued, sending, sent, deferred,
        /// failed or skipped.
        #[arg(long)]
        state: Option<DeliveryState>,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV for a spreadsheet.
        #[arg(long)]
        csv: bool,
    },
    /// Retry deferred deliveries now; with --failed, failed ones too.
    Retry {
        id: i64,
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The report's id or slug.
    #[arg(long)]
    report: ReportRef,
    /// A target list; repeat for several. Someone on two gets one message.
    #[arg(long = "list", required = true)]
    lists: Vec<ListSlug>,
    /// Only subscribers with this attribute value, e.g. role=councillor; repeat to narrow.
    #[arg(long = "where")]
    filter: Vec<AttributePair>,
    /// When to start, "YYYY-MM-DD HH:MM" in NECMAIL_TIMEZONE (or RFC 3339).
    #[arg(long, conflicts_with = "now")]
    at: Option<String>,
    /// Start as soon as a sender (the daemon or `campaign send --wait`) picks it up.
    #[arg(long)]
    now: bool,
    /// Use this subject instead of the template's.
    #[arg(long)]
    subject: Option<String>,
    /// Send the report to a list it was already sent to.
    #[arg(long)]
    again: bool,
    /// Send the report even though it is only an excerpt of its post.
    #[arg(long)]
    allow_excerpt: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(command: CampaignCommand, store: Arc<dyn Store>, config: &Config) -> CliResult {
    match command {
        CampaignCommand::Create(args) => {
            let send_at = match (&args.at, args.now) {
                (Some(at), _) => Some(parse_at(at, config.timezone).map_err(CliError::BadInput)?),
                (None, true) => Some(Utc::now()),
                (None, false) => None,
            };
            let new = NewCampaign {
                report: args.report,
                lists: args.lists,
                filter: args.filter,
                send_at,
                subject: args.subject,
                hold: false,
                allow_excerpt: args.allow_excerpt,
            };
            let campaign = match campaigns::create(&*store, &*store, new, args.again).await {
                Ok(campaign) => campaign,
                Err(CreateError::Store(e)) => return Err(e.into()),
                Err(e @ CreateError::Repeat { .. }) => {
                    return Err(CliError::BadInput(format!(
                        "{e}; add --again to send it again"
                    )));
                }
                Err(CreateError::Excerpt(slug)) => {
                    return Err(CliError::BadInput(excerpt_refusal(
                        &slug,
                        "add --allow-excerpt",
                    )));
                }
                Err(e @ CreateError::Subject) => return Err(CliError::BadInput(e.to_string())),
            };
            if args.json {
                output::json(&[campaign])?;
            } else {
                println!("{}", campaign.id);
            }
            Ok(())
        }
        CampaignCommand::Ls { json } => {
            let campaigns = store.campaigns().await?;
            if json {
                return Ok(output::json(&campaigns)?);
            }
            let mut rows = Vec::new();
            for c in &campaigns {
                let tally = store.tally(c.id).await?;
                rows.push(vec![
                    c.id.to_string(),
                    c.state.to_string(),
                    c.report_slug.clone(),
                    c.lists
                        .iter()
                        .map(ListSlug::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    c.send_at
                        .map(|t| output::local_time(t, config.timezone))
                        .unwrap_or_default(),
                    format!("{}/{}", tally.sent, tally.total),
                ]);
            }
            Ok(output::table(
                &["ID", "STATE", "REPORT", "LISTS", "SEND AT", "SENT"],
                &rows,
            )?)
        }
        CampaignCommand::Status { id, json } => status(&*store, id, json, config).await,
        CampaignCommand::Send { id, wait } => send(store, id, wait, config).await,
        CampaignCommand::Approve { id } => {
            let campaign = store.approve_campaign(id, Utc::now()).await?;
            let at = campaign
                .send_at
                .map(|t| {
                    t.with_timezone(&config.timezone)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_default();
            println!("campaign {id} is approved and starts at {at}");
            Ok(())
        }
        CampaignCommand::Pause { id } => {
            steer(
                &*store,
                id,
                CampaignState::Paused,
                Some("paused by an admin"),
            )
            .await
        }
        CampaignCommand::Resume { id } => steer(&*store, id, CampaignState::Sending, None).await,
        CampaignCommand::Cancel { id } => steer(&*store, id, CampaignState::Cancelled, None).await,
        CampaignCommand::Deliveries {
            id,
            state,
            json,
            csv,
        } => {
            let format = match (json, csv) {
                (true, _) => Format::Json,
                (_, true) => Format::Csv,
                _ => Format::Table,
            };
            deliveries(&*store, id, state, format).await
        }
        CampaignCommand::Retry { id, failed } => {
            let n = store.retry_deliveries(id, failed).await?;
            println!("campaign {id}: {n} deliveries will be retried now");
            Ok(())
        }
    }
}

/// How `campaign deliveries` writes its listing.
enum Format {
    Table,
    Json,
    Csv,
}

/// Deliveries are read this many at a time, so that a campaign to tens of
/// thousands streams out as JSON or CSV in constant memory.
const PAGE: i64 = 1000;
/// The least time between two counts of a campaign's progress in `campaign send --wait`.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

async fn deliveries(
    store: &dyn Store,
    id: i64,
    state: Option<DeliveryState>,
    format: Format,
) -> CliResult {
    store.campaign(id).await?;
    let mut json = match format {
        Format::Json => Some(output::JsonArray::new(stdout())?),
        _ => None,
    };
    let mut csv = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(stdout());
            w.write_record([
                "email",
                "list",
                "state",
                "attempts",
                "last_reply",
                "sent_at",
            ])
            .map_err(output::csv_error)?;
            Some(w)
        }
        _ => None,
    };
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store.deliveries(id, state, after, PAGE).await?;
        for d in &page {
            let reply = d.last_reply.as_deref().unwrap_or("");
            let sent_at = d
                .sent_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            if let Some(json) = &mut json {
                json.push(d)?;
            } else if let Some(csv) = &mut csv {
                let attempts = d.attempts.to_string();
                let record = [
                    &d.email,
                    &d.list,
                    d.state.as_str(),
                    &attempts,
                    reply,
                    &sent_at,
                ]
                .map(|cell| spreadsheet::neutralise(cell));
                csv.write_record(record.iter().map(|cell| cell.as_bytes()))
                    .map_err(output::csv_error)?;
            } else {
                rows.push(vec![
                    d.email.clone(),
                    d.list.clone(),
                    d.state.to_string(),
                    d.attempts.to_string(),
                    reply.to_owned(),
                ]);
            }
        }
        match page.last() {
            Some(last) => after = last.id,
            None => break,
        }
    }
    if let Some(json) = json {
        json.finish()?;
    } else if let Some(mut csv) = csv {
        csv.flush()?;
    } else {
        output::table(&["EMAIL", "LIST", "STATE", "ATTEMPTS", "LAST REPLY"], &rows)?;
    }
    Ok(())
}

async fn steer(store: &dyn Store, id: i64, to: CampaignState, reason: Option<&str>) -> CliResult {
    let campaign = store.set_campaign_state(id, to, reason).await?;
    println!("campaign {id} is {}", campaign.state);
    Ok(())
}

#[derive(serde::Serialize)]
struct Status {
    campaign: Campaign,
    #[serde(flatten)]
    progress: campaigns::Progress,
    last_errors: Vec<crate::campaigns::RecentError>,
}

async fn status(store: &dyn Store, id: i64, json: bool, config: &Config) -> CliResult {
    let campaign = store.campaign(id).await?;
    let progress = campaigns::progress(store, &campaign, Utc::now()).await?;
    let status = Status {
        campaign,
        progress,
        last_errors: store.recent_errors(id, 5).await?,
    };
    if json {
        return Ok(output::json(&[status])?);
    }
    let mut out = stdout();
    let c = &status.campaign;
    writeln!(out, "campaign {}: {} — {}", c.id, c.state, c.report_title)?;
    if let Some(reason) = &c.pause_reason {
        writeln!(out, "paused because: {reason}")?;
    }
    let lists: Vec<String> = c.lists.iter().map(ListSlug::to_string).collect();
    writeln!(out, "lists: {}", lists.join(", "))?;
    if let Some(at) = c.send_at {
        writeln!(
            out,
            "send at: {}",
            at.with_timezone(&config.timezone)
                .format("%Y-%m-%d %H:%M %Z")
        )?;
    }
    let d = &status.progress.deliveries;
    writeln!(
        out,
        "deliveries: {} total — {} sent, {} queued, {} sending, {} deferred, {} failed, {} skipped; {} ambiguous",
        d.total(),
        d.sent,
        d.queued,
        d.sending,
        d.deferred,
        d.failed,
        d.skipped,
        d.ambiguous
    )?;
    writeln!(
        out,
        "feedback: {} bounced, {} complained",
        d.bounced, d.complained
    )?;
    let rate = status.progress.rate;
    match status.progress.eta_seconds {
        Some(eta) => writeln!(
            out,
            "rate: {rate:.1} messages/s; about {} left",
            human_duration(eta)
        )?,
        None => writeln!(out, "rate: {rate:.1} messages/s")?,
    }
    for e in &status.last_errors {
        writeln!(
            out,
            "  {} {} ({}): {}",
            e.at.format("%H:%M:%S"),
            e.email,
            e.state,
            e.error
        )?;
    }
    Ok(out.flush()?)
}

async fn send(store: Arc<dyn Store>, id: i64, wait: bool, config: &Config) -> CliResult {
    if wait {
        config.check_for_sending()?;
    }
    let campaign = store.campaign(id).await?;
    if let Some(why) = campaign
        .excerpt_refusal()
        .filter(|_| campaign.started_at.is_none())
    {
        return Err(CliError::BadInput(format!(
            "campaign {id} was not started: {why}"
        )));
    }
    let recipients = match store.start_campaign(id).await? {
        Start::Sending(recipients) => recipients,
        Start::NoRecipients(why) => {
            return Err(CliError::BadInput(format!(
                "campaign {id} has no recipients, so it was not started: {why}"
            )));
        }
    };
    println!("campaign {id} is sending to {recipients} recipients");
    if !wait {
        println!(
            "a running `necmail serve` sends it within seconds; without one, send it from here \
             with `necmail campaign send {id} --wait`"
        );
        return Ok(());
    }
    let engine = Sending::new(Arc::new(config.clone()))?.engine(&store);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        super::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let progress = Progress::new("send", u64::try_from(recipients).ok(), "messages");
    let watcher = {
        let store = Arc::clone(&store);
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                let began = tokio::time::Instant::now();
                if let Ok(c) = store.delivery_counts(id).await {
                    progress.update(
                        u64::try_from(c.finished()).unwrap_or_default(),
                        format!(
                            "{} sent, {} deferred, {} failed",
                            c.sent, c.deferred, c.failed
                        ),
                    );
                }
                // Counting is a scan of the campaign's deliveries, which
                // grows with it: count at most a twentieth of the time, so
                // that a large campaign is not slowed down.
                let counting = began.elapsed();
                tokio::time::sleep(PROGRESS_EVERY.max(counting * 20)).await;
            }
        })
    };
    // The run goes on the runtime's worker threads, as under `serve`: on
    // this thread, which only waits, every hand-off between the claimer
    // and the workers would wake another thread.
    let run = tokio::spawn(async move {
        let finish = engine.run(id, stop_rx).await;
        engine.close().await;
        finish
    })
    .await;
    watcher.abort();
    progress.finish();
    let finish = run
        .map_err(|e| {
            tracing::error!(error = %e, "the campaign's run ended abnormally");
            CliError::Runtime(format!(
                "the send of campaign {id} stopped unexpectedly; send it again to carry on"
            ))
        })?
        .map_err(|e| match e {
            crate::delivery::engine::EngineError::Store(e) => CliError::from(e),
            render @ crate::delivery::engine::EngineError::Render { .. } => {
                CliError::BadInput(render.to_string())
            }
        })?;
    let c = store.delivery_counts(id).await?;
    let summary = format!(
        "{} sent, {} failed, {} skipped, {} deferred",
        c.sent, c.failed, c.skipped, c.deferred
    );
    match finish {
        Finish::Done => {
            println!("campaign {id} is done: {summary}");
            Ok(())
        }
        Finish::Stopped => {
            println!("stopped; campaign {id} carries on when it is sent again: {summary}");
            Ok(())
        }
        Finish::Paused(reason) => Err(CliError::Runtime(format!(
            "campaign {id} is paused ({reason}): {summary}"
        ))),
        Finish::Cancelled => Err(CliError::Runtime(format!(
            "campaign {id} was cancelled: {summary}"
        ))),
    }
}
