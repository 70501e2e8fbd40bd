#!/usr/bin/env bash
# Measures the web admin's subscriber search and list pages with 600,000
# subscribers, on SQLite and on PostgreSQL: the p50 and p95 of each, from
# sequential requests over one kept-alive connection, as an owner, and the
# CPU time per request of the server and of PostgreSQL's backends, which
# wanders less than wall-clock time with the load of a shared machine
# (bench/lib/admin-session.sh).
#
#   bench/admin.sh [ROWS] [REQUESTS]        (default 600000 subscribers, 200 requests a page)
#
# The subscribers come in through `necmail subscriber import` (as in
# bench/import.sh); one in twenty is then suppressed and one in six has
# an event (a bounce or a join), written straight into the tables, so the
# suppressions, bounces and events pages have pages to turn. The owner is
# made with `necmail admin add`, sets a password through the one-time link
# and signs in, as a person would. Then two CSVs of new people, a sixth of
# ROWS and then ROWS, are uploaded through the import page and followed
# until imported: the time each took, and the server's peak RSS (VmHWM)
# before and after each, which stays flat if uploads stream.
#
# NECMAIL_BENCH_BIN runs that binary instead of building this tree's (to
# measure another revision). PostgreSQL is taken from
# NECMAIL_BENCH_POSTGRES_URL (a server URL; the script creates and drops
# the database necmail_bench on it), default
# postgres://postgres@127.0.0.1:5432/postgres. Set it to "" to skip;
# NECMAIL_BENCH_SQLITE=0 skips SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/admin-session.sh
. bench/lib/admin-session.sh

rows=${1:-600000}
requests=${2:-200}
pg_server=${NECMAIL_BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
port=${NECMAIL_BENCH_ADMIN_PORT:-18081}
work=$(mktemp -d)
server_pid=
pg_url=
cleanup() {
  set +e # do all of it, whatever fails
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$pg_url" ] && psql "$pg_server" -qc 'DROP DATABASE IF EXISTS necmail_bench WITH (FORCE)'
  rm -rf "$work"
}
trap cleanup EXIT

bench_binary
base=http://127.0.0.1:$port
export NECMAIL_SECRET=bench-secret-bench-secret-bench-secret NECMAIL_LOG=warn \
  NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_SPOOL_DIR="$work/spool" \
  NECMAIL_HTTP_ADDR=127.0.0.1:0 NECMAIL_PUBLIC_URL=http://127.0.0.1 \
  NECMAIL_ADMIN_ADDR=127.0.0.1:$port NECMAIL_ADMIN_URL=$base \
  NECMAIL_METRICS_ADDR=off NECMAIL_INBOUND_ADDR=off

# A CSV of $2 people, their addresses starting with $1, a tenth of them
# councillors, spread over eight councils.
people() { # prefix rows
  awk -v prefix="$1" -v n="$2" 'BEGIN {
    split("Islington,Camden,Hackney,Leeds,Bristol,Cardiff,Glasgow,Norwich", councils, ",");
    print "email,name,role,council";
    for (i = 0; i < n; i++) {
      role = (i % 10 == 0) ? "councillor" : "member";
      printf "%s%07d@example.org,Member %d,%s,%s\n", prefix, i, i, role, councils[i % 8 + 1];
    }
  }'
}
csv=$work/subscribers.csv
people member "$rows" > "$csv"

# The searches: starts of addresses and of names, long and short, one
# address exactly, and starts that match nobody.
awk -v n="$requests" -v rows="$rows" 'BEGIN {
  srand(7);
  for (i = 0; i < n; i++) {
    r = int(rand() * rows);
    k = i % 5;
    if (k == 0) printf "member%07d%%40example.org\n", r;
    else if (k == 1) printf "member%05d\n", int(r / 100);
    else if (k == 2) printf "Member+%d\n", int(r / 1000);
    else if (k == 3) printf "m\n";
    else printf "zz%d\n", r;
  }
}' > "$work/searches.txt"

# The server's peak RSS so far, in MB.
peak_rss() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$server_pid/status"; }

# A CSV of $2 new people, their addresses starting with $1, uploaded through
# the import page and followed until imported: the time it took, and the
# server's peak RSS before and after, which stays flat if the upload streams.
upload() { # prefix rows
  local file=$work/$1.csv before start csrf job
  people "$1" "$2" > "$file"
  before=$(peak_rss)
  csrf=$(curl -s -H "Cookie: $cookie" "$base/admin/subscribers/import" | field csrf)
  start=$(date +%s.%N)
  job=$(curl -s -o /dev/null -w '%{redirect_url}' -H "Cookie: $cookie" -F "csrf=$csrf" \
    -F list=members -F "file=@$file;type=text/csv" "$base/admin/subscribers/upload")
  [ -n "$job" ] || { echo "upload of $2 rows: refused" >&2; exit 1; }
  while curl -s -H "Cookie: $cookie" "$job" | grep -q 'Importing'; do sleep 0.5; done
  printf '  %-44s %6.1f s  server peak RSS %d MB (%d MB before)\n' \
    "upload and import of $2 new rows ($(du -h "$file" | cut -f1))" \
    "$(echo "$(date +%s.%N) - $start" | bc)" "$(peak_rss)" "$before"
}

bench() { # label database-url fill-sql-client
  local label=$1 url=$2
  export DATABASE_URL=$url
  "$necmail" list create members --name Members >/dev/null
  "$necmail" subscriber import "$csv" --list members --confirmed >/dev/null 2>&1
  "$3" <<'SQL'
INSERT INTO suppressions (email_hash, reason, created_at)
  SELECT email_hash, 'hard-bounce', created_at FROM subscribers WHERE id % 20 = 0;
INSERT INTO subscriber_events (at, kind, source, email, email_hash, subscriber_id, status, reason)
  SELECT created_at, CASE WHEN id % 12 = 0 THEN 'bounce' ELSE 'join' END, 'mailbox', email,
         email_hash, id, '5.1.1', 'no such user'
    FROM subscribers WHERE id % 6 = 0;
SQL
  admin_session "$label"

  echo "$label, $rows subscribers:"
  sed "s|^|$base/admin/subscribers?q=|" "$work/searches.txt" > "$work/search-urls.txt"
  measure "subscriber search (mixed prefixes)" "$work/search-urls.txt"
  page "subscribers, first page" /admin/subscribers
  page "subscribers, a middle page" "/admin/subscribers?after=$((rows / 2))"
  page "subscribers on a list, confirmed" "/admin/subscribers?list=members&status=confirmed"
  page "subscribers with role=councillor" "/admin/subscribers?attr=role%3Dcouncillor"
  page "a person's page" "/admin/subscribers/$((rows / 3))"
  page "lists, with counts" /admin/lists
  page "suppressions" /admin/suppressions
  page "bounces" /admin/bounces
  page "events" /admin/events
  page "events, an older page" "/admin/events?before=$((rows / 12))"

  upload small $((rows / 6))
  upload large "$rows"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

sqlite_fill() { sqlite3 "$work/bench.db"; }
if [ "${NECMAIL_BENCH_SQLITE:-1}" != 0 ]; then
  bench SQLite "sqlite://$work/bench.db?mode=rwc" sqlite_fill
fi

if [ -n "$pg_server" ]; then
  if psql "$pg_server" -qc 'DROP DATABASE IF EXISTS necmail_bench' \
       -c 'CREATE DATABASE necmail_bench' >/dev/null 2>&1; then
    pg_url="${pg_server%/*}/necmail_bench"
    # VACUUM ANALYZE: the steady state autovacuum reaches soon after a bulk
    # import (PostgreSQL 13+ vacuums after inserts too), whose visibility
    # map lets the lists' counts read their index alone.
    pg_fill() { psql -q "$pg_url" -f - -c 'VACUUM ANALYZE' >/dev/null; }
    bench PostgreSQL "$pg_url" pg_fill
  else
    echo "PostgreSQL  skipped: cannot reach $pg_server"
  fi
fi
