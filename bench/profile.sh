#!/usr/bin/env bash
# Records a callgrind profile of `necmail campaign send` of a 10,000-message
# campaign (SQLite, 16 connections) to Postfix's smtp-sink on loopback, and
# prints the instructions per message and the top functions, inclusive.
# Instruction counts do not depend on the load of the machine.
#
#   bench/profile.sh [RECIPIENTS]      (default 10000)
#
# NECMAIL_BIN=path uses that binary instead of building this tree's release
# build (to profile another commit); NECMAIL_PROFILE_OUT=file keeps the profile.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/callgrind.sh

n=${1:-10000}
port=${NECMAIL_BENCH_SMTP_PORT:-25251}
work=$(mktemp -d)
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export PATH=$PATH:/usr/sbin
if ! command -v smtp-sink >/dev/null; then
  echo "== installing postfix (for smtp-sink)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
callgrind_needed

if [ -n "${NECMAIL_BIN:-}" ]; then
  necmail=$NECMAIL_BIN
else
  cargo build --release --locked --quiet
  necmail=$PWD/target/release/necmail
fi
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc" NECMAIL_OUTBOX_DIR="$work/outbox" \
  NECMAIL_LOG=warn NECMAIL_SECRET=bench-secret-of-some-length

smtp-sink -u nobody 127.0.0.1:$port 1000 &
sink_pid=$!

echo "== $n subscribers and a 3,000-word report"
awk -v n="$n" 'BEGIN { print "email,name,role"; for (i = 0; i < n; i++)
  printf "member%07d@example.org,Member %d,%s\n", i, i, (i % 10 == 0) ? "councillor" : "member" }' \
  > "$work/subscribers.csv"
$necmail list create members --name "Party members" >/dev/null
$necmail subscriber import "$work/subscribers.csv" --list members --confirmed >/dev/null
$necmail report import tests/fixtures/render/three-thousand-words.md >/dev/null
$necmail report preview 1 --as member0000001@example.org --out "$work/preview" >/dev/null
echo "message size: $(stat -c %s "$work/preview/preview.eml") bytes"
id=$($necmail campaign create --report 1 --list members)

out=${NECMAIL_PROFILE_OUT:-$work/callgrind.out}
echo "== callgrind: campaign send $id to smtp-sink"
NECMAIL_SMTP_URL="smtp://127.0.0.1:$port" NECMAIL_SMTP_CONNECTIONS=16 \
  valgrind --tool=callgrind --callgrind-out-file="$out" \
  "$necmail" campaign send "$id" --wait > "$work/send.txt" 2> "$work/valgrind.txt" || {
    cat "$work/send.txt" "$work/valgrind.txt"; exit 1; }
tail -1 "$work/send.txt"

callgrind_counts "$out" "$n" message
callgrind_top "$out"
