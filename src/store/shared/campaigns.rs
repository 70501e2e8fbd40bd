//! Campaigns and deliveries, for both backends: compiled into each (see
//! [`crate::store`]). Claiming differs: PostgreSQL locks the rows it claims
//! with `FOR UPDATE SKIP LOCKED`, so several necmail instances share a
//! campaign; SQLite's single writer makes the same statement atomic.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::query::QueryAs;
use sqlx::types::Json;
use tokio::sync::watch;

use super::Db;
use crate::campaigns::{
    AlsoList, Campaign, CampaignState, CampaignStore, ClaimFrom, Claimed, DeliveryCounts,
    DeliveryRecord, DeliveryState, ListReach, NewCampaign, NoRecipients, Outcome, RecentError,
    Recorded, SentSince, Start, Tally, Totals, TotalsStore,
};
use crate::error::{StoreError, UnknownName};
use crate::lists::ListSlug;
use crate::store::{Dialect, QueueWalk, SqlStore, TALLY_ROWS_BEFORE_FOLD, WriteTx};
use crate::subscribers::{Attributes, SubscriberEmail};

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: i64,
    report_id: i64,
    report_slug: String,
    report_title: String,
    subject: Option<String>,
    filter: Json<Attributes>,
    state: String,
    send_at: Option<DateTime<Utc>>,
    pause_reason: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    report_excerpt: bool,
    allow_excerpt: bool,
}

const SELECT_CAMPAIGNS: &str = "
    SELECT c.id, c.report_id, r.slug AS report_slug, r.title AS report_title, c.subject,
           c.filter, c.state, c.send_at, c.pause_reason, c.created_at, c.started_at, c.finished_at,
           r.excerpt AS report_excerpt, c.allow_excerpt
      FROM campaigns c JOIN reports r ON r.id = c.report_id";

fn campaign(row: CampaignRow, lists: Vec<String>) -> Result<Campaign, StoreError> {
    let corrupt = |e: String| StoreError::corrupt(format_args!("campaign {}", row.id), e);
    Ok(Campaign {
        id: row.id,
        report_id: row.report_id,
        report_slug: row.report_slug.clone(),
        report_title: row.report_title.clone(),
        lists: lists
            .iter()
            .map(|l| ListSlug::parse(l).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<_, _>>()?,
        filter: row.filter.0.clone(),
        subject: row.subject.clone(),
        state: row
            .state
            .parse()
            .map_err(|e: UnknownName| corrupt(e.to_string()))?,
        send_at: row.send_at,
        pause_reason: row.pause_reason.clone(),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
        report_excerpt: row.report_excerpt,
        allow_excerpt: row.allow_excerpt,
    })
}

/// Which states a campaign may move to `to` from.
fn allowed_from(to: CampaignState) -> &'static [&'static str] {
    match to {
        CampaignState::Paused => &["scheduled", "held", "sending"],
        CampaignState::Cancelled => &["draft", "scheduled", "held", "sending", "paused"],
        CampaignState::Scheduled => &["held"],
        CampaignState::Sending => &["paused"],
        CampaignState::Draft | CampaignState::Held | CampaignState::Done => &[],
    }
}

/// When a campaign becoming scheduled at `now` starts: at its start time
/// `send_at` while that is still ahead, else at once.
fn start_time(send_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    send_at.filter(|at| *at > now).unwrap_or(now)
}

/// The claim statement for deliveries matching `condition` (which names
/// the campaign, `$4`), locked as the dialect allows, without its
/// `RETURNING`.
fn claim_sql(condition: &str, lock: &str) -> String {
    format!(
        "UPDATE deliveries
            SET state = 'sending', worker = $1, lease_until = $2, attempts = attempts + 1,
                ambiguous = ambiguous + CASE WHEN state = 'sending' THEN 1 ELSE 0 END,
                first_attempt_at = COALESCE(first_attempt_at, $3), updated_at = $3
          WHERE id IN (SELECT id FROM deliveries WHERE {condition} ORDER BY id LIMIT $5{lock})"
    )
}

/// A claim statement returning rows of `O`.
type ClaimQuery<'q, O> = QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>;

/// One claim's parameters, for each of its statements.
struct Claim<'a> {
    id: i64,
    worker: &'a str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
}

impl<'a> Claim<'a> {
    /// Claims up to `limit` deliveries matching `condition`, binding
    /// `window` as `$6` and `$7` when given, and reads what their messages
    /// need, in one statement ([`Dialect::CLAIM_AND_READ`]).
    async fn fetch(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        condition: &str,
        limit: i64,
        window: Option<(i64, i64)>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let update = claim_sql(condition, <Db as Dialect>::CLAIM_LOCK);
        let sql = match <Db as Dialect>::CLAIM_AND_READ {
            Some(first) => format!(
                "WITH {first}, d AS ({update} RETURNING {CLAIMED_RETURNING})
                 {CLAIMED_COLUMNS} FROM d CROSS JOIN no_flush{CLAIMED_JOINS}{CLAIMED_ORDER}"
            ),
            None => format!("{update} RETURNING {CLAIMED_THROUGH_SUBQUERIES}"),
        };
        let query = self.bind(sqlx::query_as::<Db, ClaimedRow>(AssertSqlSafe(sql)), limit);
        let mut rows = match window {
            Some((after, end)) => query.bind(after).bind(end).fetch_all(conn).await,
            None => query.fetch_all(conn).await,
        }?;
        // SQLite returns an UPDATE's rows in no particular order. The sort
        // is stable: one delivery's rows keep the order of its other lists.
        rows.sort_by_key(|row| row.delivery_id);
        fold_claimed(rows)
    }

    /// `query` with the claim's parameters `$1` to `$5` bound.
    fn bind<'q, O>(&self, query: ClaimQuery<'q, O>, limit: i64) -> ClaimQuery<'q, O>
    where
        'a: 'q,
    {
        query
            .bind(self.worker)
            .bind(self.lease_until)
            .bind(self.now)
            .bind(self.id)
            .bind(limit)
    }
}

/// How many `claimed` there are, as SQL counts.
fn count(claimed: &[Claimed]) -> i64 {
    i64::try_from(claimed.len()).unwrap_or(i64::MAX)
}

/// What a claim takes before the queue, in this order: expired leases
/// (their outcome is unknown), then deferred deliveries that are due. A
/// worker never takes back its own expired leases: it is alive and still
/// holds them (its renewal fell behind), and their outcome is on its way.
const BEYOND_QUEUE: [&str; 2] = [
    "campaign_id = $4 AND state = 'sending' AND lease_until < $3
       AND (worker IS NULL OR worker <> $1)",
    "campaign_id = $4 AND state = 'deferred' AND next_attempt_at <= $3",
];
/// Queued deliveries in one window of a walk of the queue: ids in
/// `$6 + 1 ..= $7`. The campaign and the state are tested through
/// expressions that no index holds, so the id range is the only way into
/// the table and a claim reads no more than its window, whatever the plan
/// and the table statistics. (A freshly filled table looks empty to
/// PostgreSQL: every index then seems as good as another, the smallest,
/// on `(campaign_id, state)`, wins, and each claim read the whole queue.)
const QUEUED_IN_WINDOW: &str =
    "campaign_id + 0 = $4 AND state || '' = 'queued' AND id > $6 AND id <= $7";
/// The ids of a campaign's queued deliveries after `$2`: the first and last.
const QUEUE_SPAN: &str = "SELECT MIN(id), MAX(id) FROM deliveries
  WHERE campaign_id = $1 AND state = 'queued' AND id > $2";
/// How many ids a window of the walk spans, per delivery wanted, and at least.
const WINDOW_PER_CLAIM: i64 = 4;
const MIN_WINDOW: i64 = 256;

/// What claimed deliveries `d` need for their messages: one row per
/// delivery, or one per other list of the campaign its subscriber is
/// confirmed on (found through the campaign's few lists and the
/// subscriptions' primary key), in the campaign's order; see
/// [`fold_claimed`]. The columns, then the joins after `d`, then the order.
const CLAIMED_COLUMNS: &str = "SELECT d.id AS delivery_id, d.subscriber_id, d.list_id,
        l.slug AS list_slug, l.name AS list_name, d.attempts, d.first_attempt_at,
        s.email, s.name, s.attributes,
        COALESCE(x.status = 'confirmed' AND s.status = 'active'
                 AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash), FALSE) AS eligible,
        o.id AS also_id, o.slug AS also_slug, o.name AS also_name";
const CLAIMED_JOINS: &str = "
   JOIN subscribers s ON s.id = d.subscriber_id
   JOIN lists l ON l.id = d.list_id
   LEFT JOIN subscriptions x ON x.subscriber_id = d.subscriber_id AND x.list_id = d.list_id
   LEFT JOIN campaign_lists ol ON ol.campaign_id = d.campaign_id AND ol.list_id <> d.list_id
        AND EXISTS (SELECT 1 FROM subscriptions y
                     WHERE y.subscriber_id = d.subscriber_id AND y.list_id = ol.list_id
                       AND y.status = 'confirmed')
   LEFT JOIN lists o ON o.id = ol.list_id";
const CLAIMED_ORDER: &str = " ORDER BY d.id, ol.position";
/// The columns of the claimed deliveries that [`CLAIMED_COLUMNS`] and
/// [`CLAIMED_JOINS`] use, as the claim returns them: their values after it.
const CLAIMED_RETURNING: &str =
    "id, campaign_id, subscriber_id, list_id, attempts, first_attempt_at";

/// [`CLAIMED_COLUMNS`] and [`CLAIMED_JOINS`] as a `RETURNING` of the
/// claim's `UPDATE` of `deliveries` can give them, through a subquery for
/// each: one row per delivery, with its other lists in `also_lists`, a JSON
/// array of `[id, slug, name]` in the campaign's order, or NULL for none.
const CLAIMED_THROUGH_SUBQUERIES: &str = "id AS delivery_id, subscriber_id, list_id,
        (SELECT l.slug FROM lists l WHERE l.id = deliveries.list_id) AS list_slug,
        (SELECT l.name FROM lists l WHERE l.id = deliveries.list_id) AS list_name,
        attempts, first_attempt_at,
        (SELECT s.email FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS email,
        (SELECT s.name FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS name,
        (SELECT s.attributes FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS attributes,
        (SELECT COALESCE(x.status = 'confirmed' AND s.status = 'active'
                         AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash), FALSE)
           FROM subscribers s
           LEFT JOIN subscriptions x ON x.subscriber_id = s.id AND x.list_id = deliveries.list_id
          WHERE s.id = deliveries.subscriber_id) AS eligible,
        (SELECT NULLIF(json_group_array(json_array(o.id, o.slug, o.name) ORDER BY ol.position), '[]')
           FROM campaign_lists ol JOIN lists o ON o.id = ol.list_id
          WHERE ol.campaign_id = deliveries.campaign_id AND ol.list_id <> deliveries.list_id
            AND EXISTS (SELECT 1 FROM subscriptions y
                         WHERE y.subscriber_id = deliveries.subscriber_id AND y.list_id = ol.list_id
                           AND y.status = 'confirmed')) AS also_lists";

/// A row of a claim: [`CLAIMED_COLUMNS`] on PostgreSQL,
/// [`CLAIMED_THROUGH_SUBQUERIES`] on SQLite.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    delivery_id: i64,
    subscriber_id: i64,
    list_id: i64,
    list_slug: String,
    list_name: String,
    attempts: i32,
    first_attempt_at: Option<DateTime<Utc>>,
    email: String,
    name: Option<String>,
    attributes: Json<Attributes>,
    eligible: bool,
    /// One other list per row ([`CLAIMED_JOINS`]), or all of them in
    /// `also_lists` ([`CLAIMED_THROUGH_SUBQUERIES`]).
    #[sqlx(default)]
    also_id: Option<i64>,
    #[sqlx(default)]
    also_slug: Option<String>,
    #[sqlx(default)]
    also_name: Option<String>,
    #[sqlx(default)]
    also_lists: Option<Json<Vec<(i64, String, String)>>>,
}

impl ClaimedRow {
    /// The other lists this row names: none, one, or all of the delivery's.
    fn also(&mut self) -> Vec<AlsoList> {
        if let Some(Json(lists)) = self.also_lists.take() {
            return lists
                .into_iter()
                .map(|(id, slug, name)| AlsoList { id, slug, name })
                .collect();
        }
        match (self.also_id, self.also_slug.take(), self.also_name.take()) {
            (Some(id), Some(slug), Some(name)) => vec![AlsoList { id, slug, name }],
            _ => Vec::new(),
        }
    }
}

/// The claimed deliveries of a claim's rows, in order: the rows of one
/// delivery each add one of its other lists, or all of them.
fn fold_claimed(rows: Vec<ClaimedRow>) -> Result<Vec<Claimed>, StoreError> {
    let mut claimed: Vec<Claimed> = Vec::with_capacity(rows.len());
    for mut row in rows {
        let also = row.also();
        match claimed.last_mut() {
            Some(last) if last.delivery_id == row.delivery_id => last.also.extend(also),
            _ => {
                let mut delivery = Claimed::try_from(row)?;
                delivery.also.extend(also);
                claimed.push(delivery);
            }
        }
    }
    Ok(claimed)
}

impl TryFrom<ClaimedRow> for Claimed {
    type Error = StoreError;

    fn try_from(row: ClaimedRow) -> Result<Self, StoreError> {
        let email = SubscriberEmail::parse(&row.email).map_err(|e| {
            StoreError::corrupt(
                format_args!("the address of subscriber {}", row.subscriber_id),
                e,
            )
        })?;
        Ok(Claimed {
            delivery_id: row.delivery_id,
            subscriber_id: row.subscriber_id,
            list_id: row.list_id,
            list_slug: row.list_slug,
            list_name: row.list_name,
            attempts: row.attempts,
            first_attempt_at: row.first_attempt_at,
            email,
            name: row.name,
            attributes: row.attributes.0,
            eligible: row.eligible,
            also: Vec::new(),
        })
    }
}

/// The delivery columns an outcome sets: state, SMTP reply, last error,
/// next attempt, and whether it adds an ambiguous attempt.
fn outcome_columns(
    outcome: &Outcome,
) -> (
    &'static str,
    Option<&str>,
    Option<&str>,
    Option<DateTime<Utc>>,
    i32,
) {
    match outcome {
        Outcome::Sent { reply } => ("sent", Some(reply), None, None, 0),
        Outcome::Deferred {
            error,
            retry_at,
            ambiguous,
        } => (
            "deferred",
            None,
            Some(error),
            Some(*retry_at),
            i32::from(*ambiguous),
        ),
        Outcome::Failed { error, .. } => ("failed", Some(error), Some(error), None, 0),
        Outcome::Skipped { reason } => ("skipped", None, Some(reason), None, 0),
    }
}

/// How many outcomes one `record` statement takes (six binds each).
const RECORD_CHUNK: usize = 500;

/// The statement that writes `outcomes` (at most [`RECORD_CHUNK`]) of
/// `worker`'s deliveries, written at `now`.
fn record_outcomes(
    worker: &str,
    outcomes: &[Recorded],
    now: DateTime<Utc>,
) -> sqlx::QueryBuilder<Db> {
    let mut qb =
        sqlx::QueryBuilder::<Db>::new("WITH v (id, state, reply, error, next_at, amb) AS (");
    qb.push_values(outcomes, |mut row, r| {
        let (state, reply, error, next_at, amb) = outcome_columns(&r.outcome);
        row.push_bind(r.delivery_id)
            .push_bind(state)
            .push_bind(reply.map(str::to_owned))
            .push_bind(error.map(str::to_owned))
            .push_bind(next_at)
            .push_bind(amb);
    });
    qb.push(
        ") UPDATE deliveries SET state = v.state, smtp_reply = COALESCE(v.reply, deliveries.smtp_reply),
            last_error = v.error, next_attempt_at = v.next_at, ambiguous = deliveries.ambiguous + v.amb,
            lease_until = NULL, sent_at = CASE WHEN v.state = 'sent' THEN ",
    );
    qb.push_bind(now)
        .push(" ELSE deliveries.sent_at END, updated_at = ")
        .push_bind(now);
    qb.push(
        " FROM v WHERE deliveries.id = v.id AND deliveries.state = 'sending'
            AND deliveries.worker = ",
    );
    qb.push_bind(worker);
    qb
}

/// A row of the recipients table, after the recipient's address key:
/// deliveries `d`, subscribers `s`, lists `l`.
const DELIVERY_COLUMNS: &str = "d.id, s.email, l.slug, d.state, d.attempts,
    CASE WHEN d.state = 'sent' THEN d.smtp_reply ELSE COALESCE(d.last_error, d.smtp_reply) END,
    d.sent_at, d.updated_at";

type DeliveryRow = (
    String,
    i64,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// A delivery of the recipients table, with its address key.
fn delivery_record(row: DeliveryRow) -> Result<(String, DeliveryRecord), StoreError> {
    let (key, id, email, list, state, attempts, last_reply, sent_at, updated_at) = row;
    let state = state
        .parse()
        .map_err(|e| StoreError::corrupt("a delivery's state", e))?;
    Ok((
        key,
        DeliveryRecord {
            id,
            email,
            list,
            state,
            attempts,
            last_reply,
            sent_at,
            updated_at,
        },
    ))
}

/// Narrows the subscriptions `x` of subscribers `s` in a query to those a
/// campaign with `filter` goes to: confirmed, of an active subscriber who
/// is not suppressed and has every attribute value of the filter.
fn push_audience(qb: &mut sqlx::QueryBuilder<Db>, filter: &Attributes) {
    qb.push(
        " AND x.status = 'confirmed' AND s.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)",
    );
    for (key, value) in filter.iter() {
        qb.push(" AND s.attributes ->> ").push_bind(key.to_owned());
        qb.push(" = ").push_bind(value.to_owned());
    }
}

impl SqlStore<Db> {
    /// Claims up to `limit` deliveries `from` where it says, and reads
    /// what their messages need.
    async fn claim_from(
        &self,
        from: ClaimFrom,
        id: i64,
        worker: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = Utc::now();
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claim = Claim {
            id,
            worker,
            now,
            lease_until,
        };
        let mut claimed = Vec::new();
        let mut conn = self.begin_claim().await?;
        let walked = async {
            if from == ClaimFrom::Anywhere {
                for condition in BEYOND_QUEUE {
                    let want = limit - count(&claimed);
                    if want <= 0 {
                        break;
                    }
                    claimed.extend(claim.fetch(&mut conn, condition, want, None).await?);
                }
            }
            self.walk_queue(&mut conn, &claim, from, limit, &mut claimed)
                .await
        }
        .await;
        match walked {
            Ok(()) => Ok(claimed),
            // Each statement committed by itself: what the claim took before
            // the error is claimed. It is sent, and the error comes back next
            // time.
            Err(e) if !claimed.is_empty() => {
                tracing::warn!(error = %e, "a claim stopped short");
                Ok(claimed)
            }
            Err(e) => Err(e),
        }
    }

    /// Claims queued deliveries until `claimed` holds `limit`, walking the
    /// queue in id order a window at a time from where this worker's last
    /// claim stopped. A walk that is new, or over when the claim is from
    /// anywhere, starts again at the queue's first id, for deliveries queued
    /// again behind it (given back, retried).
    async fn walk_queue(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        claim: &Claim<'_>,
        from: ClaimFrom,
        limit: i64,
        claimed: &mut Vec<Claimed>,
    ) -> Result<(), StoreError> {
        let mut walk = self.queue_walks.get(claim.id, claim.worker);
        let mut looked = false;
        loop {
            let want = limit - count(claimed);
            if want <= 0 {
                break;
            }
            let mut current = match walk {
                Some(walk) if !walk.is_over() => walk,
                Some(_) if from == ClaimFrom::Queue => break,
                _ if looked => break,
                _ => {
                    looked = true;
                    Self::queue_span(conn, claim.id, 0).await?
                }
            };
            if current.is_over() {
                walk = Some(current);
                break;
            }
            let window = want.saturating_mul(WINDOW_PER_CLAIM).max(MIN_WINDOW);
            let end = current.after.saturating_add(window).min(current.last);
            let got = claim
                .fetch(conn, QUEUED_IN_WINDOW, want, Some((current.after, end)))
                .await?;
            current.after = match got.last() {
                Some(last) if count(&got) == want => last.delivery_id,
                _ => end,
            };
            if got.is_empty() && !current.is_over() {
                // Others took this window: jump to the next queued row.
                let next = Self::queue_span(conn, claim.id, current.after).await?;
                current = if next.is_over() {
                    QueueWalk {
                        after: current.last,
                        ..current
                    }
                } else {
                    next
                };
            }
            claimed.extend(got);
            walk = Some(current);
        }
        if let Some(walk) = walk {
            self.queue_walks.put(claim.id, claim.worker, walk);
        }
        Ok(())
    }

    /// The walk of campaign `id`'s queued deliveries after id `after`:
    /// over at once when there are none.
    async fn queue_span(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
        after: i64,
    ) -> Result<QueueWalk, StoreError> {
        let (first, last) = sqlx::query_as::<Db, (Option<i64>, Option<i64>)>(QUEUE_SPAN)
            .bind(id)
            .bind(after)
            .fetch_one(conn)
            .await?;
        Ok(match (first, last) {
            (Some(first), Some(last)) => QueueWalk {
                after: first - 1,
                last,
            },
            _ => QueueWalk { after, last: after },
        })
    }

    /// Campaign `id`'s deliveries counted by state, from the tallies the
    /// triggers keep (migration 0021): a few rows however large the
    /// campaign. Where the tallies have grown many rows (PostgreSQL appends
    /// one or two per statement that moves deliveries), it folds them.
    async fn state_counts(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let tallies = sqlx::query_as::<Db, (String, i64, i64)>(
            "SELECT state, CAST(SUM(n) AS BIGINT), COUNT(*) FROM delivery_tallies
              WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        if let Some(fold) = <Db as Dialect>::FOLD_DELIVERY_TALLIES
            && tallies.iter().map(|(_, _, rows)| rows).sum::<i64>() > TALLY_ROWS_BEFORE_FOLD
        {
            // The counts are read; a fold that fails (a deadlock with a
            // deletion, say) is tidying the next reader does instead.
            if let Err(e) = sqlx::query::<Db>(fold).bind(id).execute(&mut *conn).await {
                tracing::warn!(campaign = id, error = %e, "could not fold the delivery tallies");
            }
        }
        Ok(tallies
            .into_iter()
            .filter(|(_, n, _)| *n != 0)
            .map(|(state, n, _)| (state, n))
            .collect())
    }

    /// The campaigns `ids` names, in that order.
    async fn load_campaigns(
        conn: &mut <Db as sqlx::Database>::Connection,
        ids: Vec<i64>,
    ) -> Result<Vec<Campaign>, StoreError> {
        let mut campaigns = Vec::with_capacity(ids.len());
        for id in ids {
            campaigns.push(Self::load_campaign(conn, id).await?);
        }
        Ok(campaigns)
    }

    pub(super) async fn load_campaign(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
    ) -> Result<Campaign, StoreError> {
        let row = sqlx::query_as::<Db, CampaignRow>(AssertSqlSafe(format!(
            "{} WHERE c.id = $1",
            SELECT_CAMPAIGNS
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found(format_args!("there is no campaign {id}")))?;
        let lists = sqlx::query_scalar::<Db, String>(
            "SELECT l.slug FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
              WHERE cl.campaign_id = $1 ORDER BY cl.position",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        campaign(row, lists)
    }

    /// Commits `tx`, returning campaign `id` as it then stands.
    pub(super) async fn commit_campaign(
        mut tx: WriteTx<'_, Db>,
        id: i64,
    ) -> Result<Campaign, StoreError> {
        let campaign = Self::load_campaign(&mut tx, id).await?;
        tx.commit().await?;
        Ok(campaign)
    }
}

#[async_trait::async_trait]
impl CampaignStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(report = %new.report))]
    async fn create_campaign(&self, new: &NewCampaign) -> Result<Campaign, StoreError> {
        let mut tx = self.begin_write().await?;
        let report = Self::find_report(&mut tx, &new.report).await?;
        let list_ids: Vec<i64> = Self::resolve_lists(&mut tx, &new.lists)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let filter: Attributes = new.filter.iter().cloned().collect();
        let state = match (new.hold, new.send_at) {
            (true, _) => "held",
            (false, Some(_)) => "scheduled",
            (false, None) => "draft",
        };
        let id: i64 = sqlx::query_scalar::<Db, i64>(
            "INSERT INTO campaigns (report_id, subject, filter, state, send_at, created_at, allow_excerpt)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(report.id)
        .bind(new.subject.as_deref())
        .bind(Json(&filter))
        .bind(state)
        .bind(new.send_at)
        .bind(Utc::now())
        .bind(new.allow_excerpt)
        .fetch_one(&mut *tx)
        .await?;
        for (position, list_id) in list_ids.iter().enumerate() {
            sqlx::query::<Db>(
                "INSERT INTO campaign_lists (campaign_id, list_id, position) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(*list_id)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
        }
        Self::commit_campaign(tx, id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let ids = sqlx::query_scalar::<Db, i64>("SELECT id FROM campaigns ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
        Self::load_campaigns(&mut conn, ids).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?before, limit))]
    async fn campaigns_page(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Campaign>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let ids = sqlx::query_scalar::<Db, i64>(
            "SELECT id FROM campaigns WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        Self::load_campaigns(&mut conn, ids).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audience(&self, lists: &[ListSlug], filter: &Attributes) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let ids = Self::resolve_lists(&mut conn, lists).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "SELECT COUNT(DISTINCT x.subscriber_id) FROM subscriptions x
               JOIN subscribers s ON s.id = x.subscriber_id WHERE x.list_id IN (",
        );
        let mut separated = qb.separated(", ");
        for (id, _) in &ids {
            separated.push_bind(*id);
        }
        qb.push(")");
        push_audience(&mut qb, filter);
        Ok(qb.build_query_scalar::<i64>().fetch_one(&mut *conn).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn campaign(&self, id: i64) -> Result<Campaign, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::load_campaign(&mut conn, id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%feed_url, %send_at))]
    async fn feed_campaign_at(
        &self,
        feed_url: &str,
        send_at: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT c.id FROM campaigns c JOIN reports r ON r.id = c.report_id
              WHERE r.source_kind = 'feed' AND r.source_ref = $1 AND c.send_at = $2
                AND c.state <> 'cancelled'
              ORDER BY c.id LIMIT 1",
        )
        .bind(feed_url)
        .bind(send_at)
        .fetch_optional(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn start_campaign(&self, id: i64) -> Result<Start, StoreError> {
        let mut tx = self.begin_write().await?;
        let campaign = Self::load_campaign(&mut tx, id).await?;
        match campaign.state {
            CampaignState::Draft | CampaignState::Scheduled | CampaignState::Held => {}
            CampaignState::Sending | CampaignState::Paused => {
                let n: i64 = sqlx::query_scalar::<Db, i64>(
                    "SELECT COUNT(*) FROM deliveries WHERE campaign_id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                return Ok(Start::Sending(n));
            }
            CampaignState::Done | CampaignState::Cancelled => {
                return Err(StoreError::Refused(format!(
                    "campaign {id} is {} and cannot be sent again; create a new one",
                    campaign.state
                )));
            }
        }
        let now = Utc::now();
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO deliveries (campaign_id, subscriber_id, list_id, state, updated_at) SELECT ",
        );
        qb.push_bind(id)
            .push(", x.subscriber_id, x.list_id, 'queued', ")
            .push_bind(now);
        qb.push(
            " FROM campaign_lists cl
              JOIN subscriptions x ON x.list_id = cl.list_id
              JOIN subscribers s ON s.id = x.subscriber_id
             WHERE cl.campaign_id = ",
        );
        qb.push_bind(id);
        push_audience(&mut qb, &campaign.filter);
        qb.push(
            " ORDER BY cl.position, x.subscriber_id
              ON CONFLICT (campaign_id, subscriber_id) DO NOTHING",
        );
        let inserted = qb.build().execute(&mut *tx).await?.rows_affected();
        if inserted == 0 {
            // Nothing was written: dropping the transaction leaves the
            // campaign as it was.
            let lists = sqlx::query_as::<Db, (String, i64, i64)>(
                "SELECT l.slug, COUNT(*) FILTER (WHERE x.status = 'confirmed'),
                        COUNT(*) FILTER (WHERE x.status = 'unconfirmed')
                   FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
                   LEFT JOIN subscriptions x ON x.list_id = cl.list_id
                  WHERE cl.campaign_id = $1
                  GROUP BY l.slug, cl.position ORDER BY cl.position",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(slug, confirmed, unconfirmed)| {
                Ok(ListReach {
                    slug: ListSlug::parse(&slug)
                        .map_err(|e| StoreError::corrupt(format_args!("campaign {id}"), e))?,
                    confirmed,
                    unconfirmed,
                })
            })
            .collect::<Result<_, StoreError>>()?;
            return Ok(Start::NoRecipients(NoRecipients {
                lists,
                filter: campaign.filter,
            }));
        }
        sqlx::query::<Db>(
            "UPDATE campaigns SET state = 'sending', started_at = $1, pause_reason = NULL
              WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Start::Sending(i64::try_from(inserted).unwrap_or(i64::MAX)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, to = %to))]
    async fn set_campaign_state(
        &self,
        id: i64,
        to: CampaignState,
        reason: Option<&str>,
    ) -> Result<Campaign, StoreError> {
        let mut tx = self.begin_write().await?;
        let campaign = Self::load_campaign(&mut tx, id).await?;
        if campaign.state == to {
            return Ok(campaign);
        }
        if !allowed_from(to).contains(&campaign.state.as_str()) {
            return Err(StoreError::Refused(format!(
                "campaign {id} is {}, so it cannot become {to}",
                campaign.state
            )));
        }
        // A paused campaign that never started goes back to waiting for its time.
        let to = if campaign.state == CampaignState::Paused
            && to == CampaignState::Sending
            && campaign.started_at.is_none()
        {
            CampaignState::Scheduled
        } else {
            to
        };
        let now = Utc::now();
        // A campaign waiting for its time needs one, or it would never start.
        let send_at = if to == CampaignState::Scheduled {
            Some(start_time(campaign.send_at, now))
        } else {
            campaign.send_at
        };
        sqlx::query::<Db>(
            "UPDATE campaigns SET state = $1, pause_reason = $2, finished_at = $3, send_at = $4
              WHERE id = $5",
        )
        .bind(to.as_str())
        .bind(reason)
        .bind((to == CampaignState::Cancelled).then_some(now))
        .bind(send_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if to == CampaignState::Cancelled {
            sqlx::query::<Db>(
                "UPDATE deliveries SET state = 'skipped', last_error = 'the campaign was cancelled', updated_at = $1
                  WHERE campaign_id = $2 AND state IN ('queued', 'deferred')",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let campaign = Self::commit_campaign(tx, id).await?;
        self.state_changes.send_modify(|n| *n += 1);
        Ok(campaign)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn approve_campaign(&self, id: i64, now: DateTime<Utc>) -> Result<Campaign, StoreError> {
        let mut tx = self.begin_write().await?;
        let campaign = Self::load_campaign(&mut tx, id).await?;
        if campaign.state != CampaignState::Held {
            return Err(StoreError::Refused(format!(
                "campaign {id} is {}, not held, so there is nothing to approve",
                campaign.state
            )));
        }
        let send_at = start_time(campaign.send_at, now);
        sqlx::query::<Db>(
            "UPDATE campaigns SET state = 'scheduled', send_at = $1 WHERE id = $2 AND state = 'held'",
        )
        .bind(send_at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Self::commit_campaign(tx, id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT id FROM campaigns WHERE state = 'scheduled' AND send_at <= $1 ORDER BY send_at, id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, include_failed))]
    async fn retry_deliveries(&self, id: i64, include_failed: bool) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::load_campaign(&mut tx, id).await?;
        let now = Utc::now();
        let mut n = sqlx::query::<Db>(
            "UPDATE deliveries SET next_attempt_at = $1, updated_at = $1 WHERE campaign_id = $2 AND state = 'deferred'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if include_failed {
            n += sqlx::query::<Db>(
                "UPDATE deliveries SET state = 'queued', attempts = 0, first_attempt_at = NULL, updated_at = $1
                  WHERE campaign_id = $2 AND state = 'failed'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query::<Db>(
                "UPDATE campaigns SET state = 'sending', finished_at = NULL WHERE id = $1 AND state = 'done'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut c = DeliveryCounts::default();
        for (state, n) in Self::state_counts(&mut conn, id).await? {
            match state.as_str() {
                "queued" => c.queued = n,
                "sending" => c.sending = n,
                "sent" => c.sent = n,
                "deferred" => c.deferred = n,
                "failed" => c.failed = n,
                "skipped" => c.skipped = n,
                _ => {}
            }
        }
        // The few remarkable deliveries, from their own partial index: the
        // condition is the index's, word for word, so SQLite uses it too.
        (c.ambiguous, c.bounced, c.complained) = sqlx::query_as::<Db, (i64, i64, i64)>(
            "SELECT COUNT(*) FILTER (WHERE ambiguous > 0),
                    COUNT(*) FILTER (WHERE feedback = 'bounced'),
                    COUNT(*) FILTER (WHERE feedback = 'complained')
               FROM deliveries
              WHERE campaign_id = $1 AND (ambiguous > 0 OR feedback IS NOT NULL)",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(c)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn tally(&self, id: i64) -> Result<Tally, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tally = Tally::default();
        for (state, n) in Self::state_counts(&mut conn, id).await? {
            tally.total += n;
            match state.as_str() {
                "sent" => tally.sent = n,
                "failed" => tally.failed = n,
                _ => {}
            }
        }
        Ok(tally)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn recent_errors(&self, id: i64, limit: i64) -> Result<Vec<RecentError>, StoreError> {
        let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as::<Db, _>(
            "SELECT s.email, d.state, d.last_error, d.updated_at FROM deliveries d
               JOIN subscribers s ON s.id = d.subscriber_id
              WHERE d.campaign_id = $1 AND d.state IN ('deferred', 'failed') AND d.last_error IS NOT NULL
              ORDER BY d.updated_at DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(email, state, error, at)| {
                Ok(RecentError {
                    email,
                    state: state
                        .parse()
                        .map_err(|e| StoreError::corrupt("a delivery's state", e))?,
                    error,
                    at,
                })
            })
            .collect()
    }

    async fn deliveries(
        &self,
        id: i64,
        state: Option<DeliveryState>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        // Only the conditions asked for, so that the planner sees which
        // index walks the campaign's deliveries (or a state's) in id order.
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT s.email_key, {DELIVERY_COLUMNS}
               FROM deliveries d
               JOIN subscribers s ON s.id = d.subscriber_id
               JOIN lists l ON l.id = d.list_id
              WHERE d.campaign_id = "
        ));
        qb.push_bind(id).push(" AND d.id > ").push_bind(after);
        if let Some(state) = state {
            qb.push(" AND d.state = ").push_bind(state.as_str());
        }
        qb.push(" ORDER BY d.id LIMIT ").push_bind(limit);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|row| delivery_record(row).map(|(_, d)| d))
            .collect()
    }

    async fn search_deliveries(
        &self,
        id: i64,
        state: Option<DeliveryState>,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, DeliveryRecord)>, StoreError> {
        let (low, high) = super::subscribers::prefix_range(prefix);
        let from = after.filter(|key| *key >= low.as_str());
        let key = format!("s.email_key{}", <Db as Dialect>::BYTE_ORDER);
        // The subscribers' addresses in order, from the index of the prefix
        // search (migration 0015), each looked up among the campaign's
        // deliveries by its unique (campaign, subscriber) index. CROSS JOIN
        // keeps SQLite's planner walking the addresses first.
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT s.email_key, {DELIVERY_COLUMNS}
               FROM subscribers s
              CROSS JOIN deliveries d
               JOIN lists l ON l.id = d.list_id
              WHERE {key} >= "
        ));
        qb.push_bind(low);
        qb.push(format_args!(" AND {key} < ")).push_bind(high);
        if let Some(from) = from {
            qb.push(format_args!(" AND {key} > ")).push_bind(from);
        }
        qb.push(" AND d.campaign_id = ")
            .push_bind(id)
            .push(" AND d.subscriber_id = s.id");
        if let Some(state) = state {
            qb.push(" AND d.state = ").push_bind(state.as_str());
        }
        qb.push(format_args!(" ORDER BY {key} LIMIT "))
            .push_bind(limit);
        let rows: Vec<DeliveryRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(delivery_record).collect()
    }

    async fn sent_since(&self, id: i64, since: DateTime<Utc>) -> Result<SentSince, StoreError> {
        let (count, first, last) =
            sqlx::query_as::<Db, (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(
                "SELECT COUNT(*), MIN(sent_at), MAX(sent_at) FROM deliveries
                  WHERE campaign_id = $1 AND state = 'sent' AND sent_at >= $2",
            )
            .bind(id)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
        Ok(SentSince { count, first, last })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, limit, ?from))]
    async fn claim(
        &self,
        id: i64,
        worker: &str,
        limit: i64,
        lease: Duration,
        from: ClaimFrom,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claim_from(from, id, worker, limit, lease).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(outcomes = outcomes.len()))]
    async fn record(&self, worker: &str, outcomes: &[Recorded]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let bounced: Vec<i64> = outcomes
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Failed {
                        hard_bounce: true,
                        ..
                    }
                )
            })
            .map(|r| r.delivery_id)
            .collect();
        // One statement commits by itself, without a transaction's BEGIN
        // and COMMIT: two round trips fewer for each batch. It is a write,
        // so on SQLite it takes the writers' connection.
        if outcomes.len() <= RECORD_CHUNK && bounced.is_empty() {
            let _turn = self.turn().await;
            record_outcomes(worker, outcomes, now)
                .build()
                .execute(&self.write_pool)
                .await?;
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in outcomes.chunks(RECORD_CHUNK) {
            record_outcomes(worker, chunk, now)
                .build()
                .execute(&mut *tx)
                .await?;
        }
        if !bounced.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO suppressions (email_hash, reason, created_at) SELECT s.email_hash, 'hard-bounce', ",
            );
            qb.push_bind(now);
            qb.push(
                " FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id IN (",
            );
            let mut sep = qb.separated(", ");
            for d in &bounced {
                sep.push_bind(*d);
            }
            qb.push(") ON CONFLICT (email_hash) DO NOTHING");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(deliveries = ids.len()))]
    async fn renew(&self, worker: &str, ids: &[i64], lease: Duration) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let lease_until =
            Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET lease_until = ");
        qb.push_bind(lease_until)
            .push(" WHERE state = 'sending' AND worker = ")
            .push_bind(worker)
            .push(" AND id IN (");
        let mut sep = qb.separated(", ");
        for d in ids {
            sep.push_bind(*d);
        }
        qb.push(")");
        let _turn = self.turn().await;
        Ok(qb.build().execute(&self.pool).await?.rows_affected())
    }

    async fn lease_holders(&self, id: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar::<Db, String>(
            "SELECT DISTINCT worker FROM deliveries
              WHERE campaign_id = $1 AND state = 'sending' AND worker IS NOT NULL",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, worker))]
    async fn take_back(&self, id: i64, worker: &str) -> Result<u64, StoreError> {
        let _turn = self.turn().await;
        Ok(sqlx::query::<Db>(
            "UPDATE deliveries SET lease_until = $1, worker = NULL
              WHERE campaign_id = $2 AND state = 'sending' AND worker = $3",
        )
        .bind(DateTime::<Utc>::UNIX_EPOCH)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    fn state_changes(&self) -> watch::Receiver<u64> {
        self.state_changes.subscribe()
    }

    async fn sending_campaigns(&self) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT id FROM campaigns WHERE state = 'sending' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(deliveries = ids.len()))]
    async fn release(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "UPDATE deliveries SET state = 'queued', attempts = attempts - 1, lease_until = NULL, worker = NULL
              WHERE state = 'sending' AND worker = ",
        );
        qb.push_bind(worker).push(" AND id IN (");
        let mut sep = qb.separated(", ");
        for d in ids {
            sep.push_bind(*d);
        }
        qb.push(")");
        let _turn = self.turn().await;
        qb.build().execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
    async fn finish_if_complete(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.turn().await;
        let done = sqlx::query::<Db>(
            "UPDATE campaigns SET state = 'done', finished_at = $1
              WHERE id = $2 AND state = 'sending'
                AND NOT EXISTS (SELECT 1 FROM deliveries WHERE campaign_id = $2
                                   AND state IN ('queued', 'sending', 'deferred'))",
        )
        .bind(Utc::now())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    async fn next_due(&self, id: i64, worker: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar::<Db, Option<DateTime<Utc>>>(
            "SELECT MIN(CASE WHEN state = 'deferred' THEN next_attempt_at ELSE lease_until END)
               FROM deliveries WHERE campaign_id = $1
                AND (state = 'deferred'
                     OR state = 'sending' AND (worker IS NULL OR worker <> $2))",
        )
        .bind(id)
        .bind(worker)
        .fetch_one(&self.pool)
        .await?)
    }
}

#[async_trait::async_trait]
impl TotalsStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn totals(&self) -> Result<Totals, StoreError> {
        let deliveries: Vec<(String, i64)> = sqlx::query_as::<Db, _>(
            "SELECT state, CAST(SUM(n) AS BIGINT) FROM delivery_tallies
                  GROUP BY state HAVING SUM(n) <> 0",
        )
        .fetch_all(&self.pool)
        .await?;
        let suppressions: Vec<(String, i64)> =
            sqlx::query_as::<Db, _>("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason")
                .fetch_all(&self.pool)
                .await?;
        Ok(Totals {
            deliveries: deliveries
                .into_iter()
                .map(|(state, n)| {
                    let state = state
                        .parse()
                        .map_err(|e| StoreError::corrupt("a delivery's state", e))?;
                    Ok((state, n))
                })
                .collect::<Result<_, StoreError>>()?,
            suppressions: suppressions
                .into_iter()
                .map(|(reason, n)| {
                    let reason = reason
                        .parse()
                        .map_err(|e| StoreError::corrupt("a suppression's reason", e))?;
                    Ok((reason, n))
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }
}
