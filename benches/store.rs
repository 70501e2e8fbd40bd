//! What the store alone costs a send: claim a campaign's deliveries eight
//! at a time (or BATCH) and record each group as sent, as the engine does
//! for its workers, with no message rendered and no SMTP. On SQLite the database engine runs
//! inside necmail, so this is the part of `bench/send.sh`'s CPU per 1,000
//! messages that the database takes; on PostgreSQL it is the client's part
//! (the server's CPU is not counted).
//!
//!   cargo bench --bench store [-- RECIPIENTS [BATCH]]
//!
//! PostgreSQL runs when `NECMAIL_BENCH_POSTGRES` (by default
//! `postgres://postgres@127.0.0.1:5432`) answers, in a database of its own
//! that it drops afterwards; else it says it skipped it.

use std::time::{Duration, Instant};

use necmail::campaigns::{ClaimFrom, NewCampaign, Outcome, Recorded};
use necmail::config::PoolOptions;
use necmail::lists::{ListSlug, NewList, OptIn};
use necmail::reports::{ReportDraft, ReportRef, ReportSource, Stored};
use necmail::store::{self, Store};
use necmail::subscribers::import::{ImportBatch, ImportRow};
use necmail::subscribers::{AdminChannel, Consent, ConsentMethod, SubscriberEmail};
use sqlx::{AssertSqlSafe, Connection};

/// How many deliveries a claim takes and a record writes, unless told:
/// half the workers of the default 16 connections, as the engine gathers
/// them.
const BATCH: usize = 8;
const LEASE: Duration = Duration::from_secs(600);

/// This process's CPU time so far, user and system, on every thread.
fn cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: a rusage is plain integers, so zeroes are a valid one, and
    // getrusage only writes into the one it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A campaign of the 3,000-word report to `recipients` confirmed members,
/// started: its deliveries are queued. Returns its id.
async fn campaign(store: &dyn Store, recipients: usize) -> i64 {
    let members = store
        .create_list(&NewList {
            slug: ListSlug::parse("members").expect("a slug"),
            name: "Party members".into(),
            description: String::new(),
            opt_in: OptIn::Double,
            public: true,
        })
        .await
        .expect("the list is made");
    let rows: Vec<ImportRow> = (0..recipients)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            email: SubscriberEmail::parse(&format!("member{i:07}@example.org"))
                .expect("an address"),
            name: None,
            attributes: Default::default(),
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        store
            .import_batch(&ImportBatch {
                rows: chunk.to_vec(),
                lists: vec![(members.id, OptIn::Double)],
                confirmed: true,
                consent: Consent::by_admin(AdminChannel::Cli, ConsentMethod::Admin),
                job: None,
            })
            .await
            .expect("the batch is imported");
    }
    let draft = ReportDraft {
        title: "NEC report".into(),
        meeting_date: None,
        summary: None,
        body_markdown: include_str!("../tests/fixtures/render/three-thousand-words.md").into(),
        source: ReportSource::Paste,
        published_at: None,
        excerpt: None,
    };
    let report = match store
        .insert_report(&draft, &Default::default())
        .await
        .expect("the report is stored")
    {
        Stored::New(r) | Stored::Duplicate(r) | Stored::Updated(r) => r.id,
    };
    let id = store
        .create_campaign(&NewCampaign {
            report: ReportRef::Id(report),
            lists: vec![members.slug],
            filter: Vec::new(),
            send_at: None,
            subject: None,
            hold: false,
            allow_excerpt: false,
        })
        .await
        .expect("the campaign is made")
        .id;
    store.start_campaign(id).await.expect("the campaign starts");
    id
}

/// Claims and records every delivery of campaign `id`, `batch` at a
/// time, one statement after another; prints the wall and CPU time per
/// 1,000 messages under `label`.
async fn claim_and_record(
    label: &str,
    store: &dyn Store,
    id: i64,
    recipients: usize,
    batch: usize,
) {
    let worker = "bench-1-1";
    let (wall, cpu_before) = (Instant::now(), cpu());
    let mut sent = 0;
    loop {
        let claimed = store
            .claim(id, worker, batch as i64, LEASE, ClaimFrom::Queue)
            .await
            .expect("the claim works");
        if claimed.is_empty() {
            break;
        }
        let outcomes: Vec<Recorded> = claimed
            .iter()
            .map(|c| Recorded {
                delivery_id: c.delivery_id,
                outcome: Outcome::Sent {
                    reply: "250 2.0.0 Ok: queued as 4Xk2Lq0Zz9".into(),
                },
            })
            .collect();
        store
            .record(worker, &outcomes)
            .await
            .expect("the record works");
        sent += outcomes.len();
    }
    assert_eq!(sent, recipients, "every delivery was claimed once");
    let per_thousand = |d: Duration| d.as_secs_f64() / sent as f64 * 1_000.0;
    println!(
        "{label}: {sent} deliveries claimed and recorded {batch} at a time: \
         {:.4} s wall and {:.4} CPU s per 1,000 messages",
        per_thousand(wall.elapsed()),
        per_thousand(cpu() - cpu_before),
    );
}

async fn run(label: &str, url: &str, recipients: usize, batch: usize) {
    let store = store::connect(url, &PoolOptions::default())
        .await
        .expect("the store opens");
    let id = campaign(&*store, recipients).await;
    claim_and_record(label, &*store, id, recipients, batch).await;
    store.close().await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; the numbers are the campaign's size
    // and the batch.
    let mut numbers = std::env::args().skip(1).filter_map(|a| a.parse().ok());
    let recipients = numbers.next().unwrap_or(50_000);
    let batch = numbers.next().unwrap_or(BATCH);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("store.db");
    run(
        "SQLite",
        &format!("sqlite://{}", path.display()),
        recipients,
        batch,
    )
    .await;

    let server = std::env::var("NECMAIL_BENCH_POSTGRES")
        .unwrap_or("postgres://postgres@127.0.0.1:5432".into());
    let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await else {
        println!("!! SKIPPED: PostgreSQL (nothing answers at {server})");
        return;
    };
    let database = format!("necmail_bench_store_{}", std::process::id());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("the database is made");
    run(
        "PostgreSQL",
        &format!("{server}/{database}"),
        recipients,
        batch,
    )
    .await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("the database is dropped");
}
