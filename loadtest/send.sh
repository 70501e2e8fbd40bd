#!/usr/bin/env bash
# Measures a whole campaign end to end — claiming, rendering, SMTP and
# recording — against Postfix's smtp-sink on loopback, and compares it with
# Postfix's own smtp-source sending messages of the same size to the same sink.
#
#   loadtest/send.sh [RECIPIENTS]      (default 100000; try 600000)
#
# Prints messages per second and peak RSS for necmail (without and with
# RSA-2048 DKIM), smtp-source's rate, and the ratio. SQLite, 16 connections.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-100000}
port=${NECMAIL_BENCH_SMTP_PORT:-25250}
work=$(mktemp -d)
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
  echo "== installing postfix (for smtp-sink and smtp-source)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null
export PATH=$PATH:/usr/sbin

cargo build --release --quiet
necmail=$PWD/target/release/necmail
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc" NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_LOG=warn \
  NECMAIL_SECRET=bench-secret-of-some-length

smtp-sink -u nobody 127.0.0.1:$port 1000 &
sink_pid=$!
sleep 1

echo "== $n subscribers and a 3,000-word report"
awk -v n="$n" 'BEGIN { print "email,name,role"; for (i = 0; i < n; i++)
  printf "member%07d@example.org,Member %d,%s\n", i, i, (i % 10 == 0) ? "councillor" : "member" }' > "$work/subscribers.csv"
$necmail list create members --name "Party members" >/dev/null
$necmail subscriber import "$work/subscribers.csv" --list members --confirmed >/dev/null
$necmail report import tests/fixtures/render/three-thousand-words.md >/dev/null
$necmail report preview 1 --as member0000001@example.org --out "$work/preview" >/dev/null
size=$(stat -c %s "$work/preview/preview.eml")
echo "message size: $size bytes"

campaign() { # label, then extra environment
  local label=$1; shift
  local id
  id=$($necmail campaign create --report 1 --list members)
  env "$@" NECMAIL_SMTP_URL="smtp://127.0.0.1:$port" NECMAIL_SMTP_CONNECTIONS=16 \
    /usr/bin/time -v -o "$work/time.txt" "$necmail" campaign send "$id" --wait > "$work/send.txt" 2>&1
  local secs rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$work/time.txt")
  local rate
  rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  printf '%-24s %8d messages in %7.2f s = %6d messages/s, peak RSS %4d MB (%s)\n' \
    "$label" "$n" "$secs" "$rate" "$rss" "$(tail -1 "$work/send.txt")"
  echo "$rate" > "$work/rate-$label"
}

campaign necmail
openssl genrsa -out "$work/dkim.pem" 2048 2>/dev/null
campaign necmail+DKIM NECMAIL_DKIM_SELECTOR=bench NECMAIL_DKIM_KEY_FILE="$work/dkim.pem"

start=$(date +%s.%N)
smtp-source -s 16 -d -m "$n" -l "$size" -f bench@example.org -t sink@example.org 127.0.0.1:$port
end=$(date +%s.%N)
source_rate=$(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
printf '%-24s %8d messages in %7.2f s = %6d messages/s\n' smtp-source "$n" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$source_rate"
awk -v a="$(cat "$work/rate-necmail")" -v b="$source_rate" 'BEGIN { printf "ratio necmail / smtp-source: %.2f\n", a / b }'
