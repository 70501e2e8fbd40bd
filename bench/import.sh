#!/usr/bin/env bash
# Measures `necmail subscriber import` on a deterministic CSV, into a fresh
# SQLite file and a fresh PostgreSQL database: wall time and peak RSS.
#
#   bench/import.sh [ROWS]        (default 600000)
#
# NECMAIL_BIN=path measures that binary instead of this tree's release build.
# PostgreSQL is taken from NECMAIL_BENCH_POSTGRES_URL (a server URL; the
# script creates and drops the database necmail_bench on it), default
# postgres://postgres@127.0.0.1:5432/postgres. Set it to "" to skip.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=${1:-600000}
pg_server=${NECMAIL_BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
if [ -n "${NECMAIL_BIN:-}" ]; then
  bin=$NECMAIL_BIN
else
  cargo build --release --quiet
  bin=$PWD/target/release/necmail
fi

csv=$work/subscribers.csv
awk -v n="$rows" 'BEGIN {
  split("Islington,Camden,Hackney,Leeds,Bristol,Cardiff,Glasgow,Norwich", councils, ",");
  print "email,name,role,council,constituency";
  for (i = 0; i < n; i++) {
    role = (i % 10 == 0) ? "councillor" : "member";
    printf "member%07d@example.org,Member %d,%s,%s,Constituency %d\n", i, i, role, councils[i % 8 + 1], i % 650;
  }
}' > "$csv"
echo "CSV: $rows rows, $(du -h "$csv" | cut -f1)"

measure() { # label database-url
  local label=$1 url=$2
  DATABASE_URL=$url "$bin" list create members --name Members >/dev/null
  DATABASE_URL=$url /usr/bin/time -v -o "$work/time.txt" \
    "$bin" subscriber import "$csv" --list members --confirmed 2>/dev/null > "$work/summary.txt"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$work/time.txt")
  printf '%-10s %8s rows  wall %8s  peak RSS %4s MB  (%s)\n' "$label" "$rows" "$wall" "$rss" "$(cat "$work/summary.txt")"
}

measure SQLite "sqlite://$work/bench.db?mode=rwc"

if [ -n "$pg_server" ]; then
  if psql "$pg_server" -qc 'DROP DATABASE IF EXISTS necmail_bench' -c 'CREATE DATABASE necmail_bench' >/dev/null 2>&1; then
    measure PostgreSQL "${pg_server%/*}/necmail_bench"
    psql "$pg_server" -qc 'DROP DATABASE necmail_bench' >/dev/null
  else
    echo "PostgreSQL  skipped: cannot reach $pg_server"
  fi
fi
