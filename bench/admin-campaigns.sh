#!/usr/bin/env bash
# Measures the web admin's campaign pages with a campaign of 600,000
# deliveries, on SQLite and on PostgreSQL: the p50 and p95 of the campaign's
# status page (its recipients a page at a time, by state and by a search of
# the start of their address), the campaign list and the dashboard, from
# sequential requests over one kept-alive connection, as an owner, and the
# CPU time per request of the server and of PostgreSQL's backends, which
# wanders less than wall-clock time with the load of a shared machine
# (bench/lib/admin-session.sh).
#
#   bench/admin-campaigns.sh [ROWS] [REQUESTS]   (default 600000 deliveries, 200 requests a page)
#
# ROWS subscribers (signed up over a year), confirmed on one list, and one
# campaign to all of them, are written straight into the tables: the
# campaign is sending, 60% sent (over the 100 minutes before), 37% queued,
# and a few sending, deferred, failed, skipped, bounced, complained and
# ambiguous; there are four finished campaigns of 1,000 besides. The daemon
# runs while it is measured, sending the campaign at one message a second
# into an outbox directory, so the last minute has a rate. The owner is
# made with `necmail admin add`, sets a password through the one-time link
# and signs in, as a person would (bench/lib/admin-session.sh).
#
# NECMAIL_BENCH_BIN runs that binary instead of building this tree's (to
# measure another revision). PostgreSQL is taken from
# NECMAIL_BENCH_POSTGRES_URL (a server URL; the script creates and drops the
# database necmail_bench_campaigns on it), default
# postgres://postgres@127.0.0.1:5432/postgres. Set it to "" to skip;
# NECMAIL_BENCH_SQLITE=0 skips SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/admin-session.sh
. bench/lib/admin-session.sh

rows=${1:-600000}
requests=${2:-200}
pg_server=${NECMAIL_BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
port=${NECMAIL_BENCH_ADMIN_PORT:-18082}
work=$(mktemp -d)
server_pid=
pg_url=
cleanup() {
  set +e # do all of it, whatever fails
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$pg_url" ] &&
    psql "$pg_server" -qc 'DROP DATABASE IF EXISTS necmail_bench_campaigns WITH (FORCE)'
  rm -rf "$work"
}
trap cleanup EXIT

bench_binary
base=http://127.0.0.1:$port
export NECMAIL_SECRET=bench-secret-bench-secret-bench-secret NECMAIL_LOG=warn \
  NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_SPOOL_DIR="$work/spool" NECMAIL_SEND_RATE=1 \
  NECMAIL_HTTP_ADDR=127.0.0.1:0 NECMAIL_PUBLIC_URL=http://127.0.0.1 \
  NECMAIL_ADMIN_ADDR=127.0.0.1:$port NECMAIL_ADMIN_URL=$base \
  NECMAIL_METRICS_ADDR=off NECMAIL_INBOUND_ADDR=off

# The subscribers, the report and the campaigns: $1 is the SQL of a moment
# so many seconds ago (given as `secs`), $2 of the numbers 1..rows as `n(i)`.
fill_sql() { # ago series
  local ago=$1 series=$2 spread=$((31536000 / rows))
  cat <<SQL
INSERT INTO subscribers (email, email_key, email_hash, name, created_at, updated_at)
  SELECT 'member' || i || '@example.org', 'member' || i || '@example.org',
         'hash' || i, 'Member ' || i, ${ago//secs/(i * $spread)}, ${ago//secs/(i * $spread)}
    FROM $series;
INSERT INTO subscriptions (subscriber_id, list_id, status, consent_at, consent_method,
                           consent_wording, confirmed_at)
  SELECT s.id, l.id, 'confirmed', s.created_at, 'import', 'bench', s.created_at
    FROM subscribers s, lists l;
INSERT INTO reports (slug, title, body_markdown, source_kind, content_hash, published_at,
                     created_at)
  VALUES ('bench', 'The bench report', '# The bench report', 'paste', 'bench',
          ${ago//secs/86400}, ${ago//secs/86400});
INSERT INTO campaigns (report_id, state, send_at, created_at, started_at, finished_at)
  SELECT r.id, 'done', ${ago//secs/(86400 * k)}, ${ago//secs/(86400 * k)},
         ${ago//secs/(86400 * k)}, ${ago//secs/(86400 * k - 600)}
    FROM reports r, (SELECT 5 AS k UNION ALL SELECT 4 UNION ALL SELECT 3 UNION ALL SELECT 2) ks
   ORDER BY k DESC;
INSERT INTO campaigns (report_id, state, send_at, created_at, started_at)
  SELECT r.id, 'sending', ${ago//secs/6000}, ${ago//secs/6000}, ${ago//secs/6000}
    FROM reports r;
INSERT INTO campaign_lists (campaign_id, list_id, position)
  SELECT c.id, l.id, 0 FROM campaigns c, lists l;
INSERT INTO deliveries (campaign_id, subscriber_id, list_id, state, attempts, updated_at, sent_at,
                        smtp_reply)
  SELECT c.id, s.id, l.id, 'sent', 1, c.finished_at, c.finished_at, '250 ok'
    FROM campaigns c, lists l, subscribers s WHERE c.state = 'done' AND s.id <= 1000;
INSERT INTO deliveries (campaign_id, subscriber_id, list_id, state, attempts, ambiguous, worker,
                        lease_until, next_attempt_at, last_error, smtp_reply, sent_at,
                        updated_at, feedback)
  SELECT c.id, s.id, l.id, s.state, CASE s.state WHEN 'queued' THEN 0 ELSE 1 END,
         CASE WHEN s.id % 500 = 0 THEN 1 ELSE 0 END,
         CASE s.state WHEN 'sending' THEN 'bench' END,
         CASE s.state WHEN 'sending' THEN ${ago//secs/(-86400)} END,
         CASE s.state WHEN 'deferred' THEN ${ago//secs/(-86400)} END,
         CASE WHEN s.state IN ('deferred', 'failed') THEN '451 try later' END,
         CASE s.state WHEN 'sent' THEN '250 ok' END,
         CASE s.state WHEN 'sent' THEN ${ago//secs/(6000 - 6000 * s.id / $rows)} END,
         ${ago//secs/(6000 - 6000 * s.id / $rows)},
         CASE WHEN s.state = 'sent' AND s.id % 200 = 0 THEN 'bounced'
              WHEN s.state = 'sent' AND s.id % 1000 = 1 THEN 'complained' END
    FROM campaigns c, lists l,
         (SELECT id, CASE WHEN id % 1000 = 7 THEN 'sending'
                          WHEN id * 100 / $rows < 60 THEN 'sent'
                          WHEN id % 100 = 97 THEN 'deferred'
                          WHEN id % 100 = 98 THEN 'failed'
                          WHEN id % 100 = 99 THEN 'skipped'
                          ELSE 'queued' END AS state
            FROM subscribers) s
   WHERE c.state = 'sending'
   ORDER BY s.id;
SQL
}

sqlite_fill() {
  fill_sql "strftime('%Y-%m-%dT%H:%M:%f+00:00', julianday('now') - (secs) / 86400.0)" \
    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
      SELECT i FROM n) n" > "$work/fill.sql"
  sqlite3 "$work/bench.db" < "$work/fill.sql"
}

pg_fill() {
  fill_sql "(now() - (secs) * interval '1 second')" "generate_series(1, $rows) AS n(i)" \
    > "$work/fill.sql"
  # VACUUM ANALYZE: the steady state autovacuum reaches soon after a bulk
  # insert, whose visibility map lets counts read an index alone.
  psql -q -v ON_ERROR_STOP=1 "$pg_url" -f "$work/fill.sql" -c 'VACUUM ANALYZE' >/dev/null
}

bench() { # label database-url fill
  local label=$1
  export DATABASE_URL=$2
  "$necmail" list create members --name Members >/dev/null
  "$3"
  admin_session "$label"

  local id
  id=$(curl -s -H "Cookie: $cookie" "$base/admin/campaigns" \
    | grep -o 'href="/admin/campaigns/[0-9]*"' | head -1 | grep -o '[0-9]*')
  echo "$label, $rows deliveries (campaign $id sending):"
  page "campaign status page" "/admin/campaigns/$id"
  page "campaign status, failed recipients" "/admin/campaigns/$id?state=failed"
  page "campaign status, a later recipients page" "/admin/campaigns/$id?after=$((rows / 2))"
  page "recipient search, one address" "/admin/campaigns/$id?q=Member$((rows / 3))%40"
  page "recipient search, a rare start" "/admin/campaigns/$id?q=member$((rows / 3))"
  page "recipient search, a common start" "/admin/campaigns/$id?q=member5"
  page "recipient search, a common start, failed" \
    "/admin/campaigns/$id?q=member5&state=failed"
  page "campaign list" "/admin/campaigns"
  page "dashboard" "/admin"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

if [ "${NECMAIL_BENCH_SQLITE:-1}" != 0 ]; then
  bench SQLite "sqlite://$work/bench.db?mode=rwc" sqlite_fill
fi

if [ -n "$pg_server" ]; then
  if psql "$pg_server" -qc 'DROP DATABASE IF EXISTS necmail_bench_campaigns' \
       -c 'CREATE DATABASE necmail_bench_campaigns' >/dev/null 2>&1; then
    pg_url="${pg_server%/*}/necmail_bench_campaigns"
    bench PostgreSQL "$pg_url" pg_fill
  else
    echo "PostgreSQL  skipped: cannot reach $pg_server"
  fi
fi
