#!/usr/bin/env bash
# Measures whole campaigns end to end (claiming, rendering, SMTP, recording)
# against Postfix's smtp-sink on loopback, beside Postfix's own smtp-source
# sending pre-built messages of the same size to the same sink: the
# physical limit of this machine.
#
#   bench/send.sh [RECIPIENTS] [RUNS]      (default 100000 and 3; try 600000 1)
#
# NECMAIL_BIN=path measures that binary instead of this tree's release build.
# Each run, in turn: smtp-source -s 16; necmail on SQLite; necmail on
# PostgreSQL (skipped when none answers at NECMAIL_BENCH_POSTGRES, by default
# postgres://postgres@127.0.0.1:5432); necmail on SQLite with RSA-2048 DKIM.
# necmail sends over 16 connections from a fresh database each time. Prints
# the medians: messages/s, CPU seconds per 1,000 messages and peak RSS, the
# ratio of each to smtp-source, and DKIM's to `openssl speed -multi 2 rsa2048`.
# Beside each sender it prints the sink's CPU seconds per 1,000 messages and
# how busy the sender and the sink kept the machine's cores between them (a
# PostgreSQL server's share is not counted): a sender that keeps them near
# 100% can only go faster by costing less. With DKIM it prints the most the
# cores allow at what necmail and the sink cost a signed message.
# NECMAIL_BENCH_SENDERS runs only the senders it names, of the default
# "smtp-source sqlite postgres sqlite+dkim" (say "sqlite" for peak RSS alone);
# without smtp-source the ratios are "-", without sqlite+dkim there is no
# `openssl speed`.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-100000}
runs=${2:-3}
port=${NECMAIL_BENCH_SMTP_PORT:-25250}
pg=${NECMAIL_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
pg_db=necmail_bench_send
senders=${NECMAIL_BENCH_SENDERS:-smtp-source sqlite postgres sqlite+dkim}
for sender in $senders; do
  case $sender in
    smtp-source | sqlite | postgres | sqlite+dkim) ;;
    *) echo "NECMAIL_BENCH_SENDERS: no sender $sender" >&2; exit 2 ;;
  esac
done
runs_sender() { case " $senders " in *" $1 "*) ;; *) return 1 ;; esac; } # name
work=$(mktemp -d)
sink_pid=
postgres=
cleanup() {
  set +e # do all of it, whatever fails
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  [ -n "$postgres" ] && psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)"
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v smtp-sink >/dev/null && ! [ -x /usr/sbin/smtp-sink ]; then
  echo "== installing postfix (for smtp-sink and smtp-source)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null
export PATH=$PATH:/usr/sbin

if [ -n "${NECMAIL_BIN:-}" ]; then
  necmail=$NECMAIL_BIN
else
  cargo build --release --quiet
  necmail=$PWD/target/release/necmail
fi
export NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_LOG=warn NECMAIL_SECRET=bench-secret-of-some-length

smtp-sink -u nobody 127.0.0.1:"$port" 1000 &
sink_pid=$!
sleep 1

awk -v n="$n" 'BEGIN { print "email,name,role"; for (i = 0; i < n; i++)
  printf "member%07d@example.org,Member %d,%s\n", i, i, (i % 10 == 0) ? "councillor" : "member" }' \
  > "$work/subscribers.csv"
openssl genrsa -out "$work/dkim.pem" 2048 2>/dev/null

if runs_sender postgres; then
  postgres=yes
  psql "$pg/postgres" -qc 'SELECT 1' >/dev/null 2>&1 || postgres=
  [ -n "$postgres" ] || echo "!! SKIPPED: PostgreSQL (nothing answers at $pg)"
fi

# A fresh database at $1 with the subscribers and the 3,000-word report.
fill() {
  DATABASE_URL=$1 "$necmail" list create members --name "Party members" >/dev/null
  DATABASE_URL=$1 "$necmail" subscriber import "$work/subscribers.csv" --list members --confirmed \
    >/dev/null
  DATABASE_URL=$1 "$necmail" report import tests/fixtures/render/three-thousand-words.md >/dev/null
}

# The CPU time smtp-sink has used so far, in clock ticks.
sink_ticks() { awk '{ print $14 + $15 }' "/proc/$sink_pid/stat"; }

# Records rate, CPU seconds per 1,000, peak RSS (MB), the sink's CPU seconds
# per 1,000 and the share of the cores the two kept busy, of a timed command
# that sent $n messages, under label $1, from /usr/bin/time's file $2, with
# the sink's ticks at its start in $3.
record() {
  awk -F': ' -v n="$n" -v sink="$(($(sink_ticks) - $3))" -v hz="$(getconf CLK_TCK)" \
    -v cores="$(nproc)" '
    /Elapsed \(wall clock\)/ { k = split($2, t, ":"); s = 0; for (i = 1; i <= k; i++) s = s * 60 + t[i] }
    /User time/ { cpu += $2 } /System time/ { cpu += $2 }
    /Maximum resident set size/ { rss = $2 / 1024 }
    END { printf "%.0f %.3f %.0f %.3f %.2f\n", n / s, cpu / n * 1000, rss, sink / hz / n * 1000,
      (cpu + sink / hz) / s / cores }' "$2" >> "$work/runs-$1"
}

necmail_run() { # label, database URL, then extra environment
  local label=$1 url=$2 id
  shift 2
  rm -rf "$work/outbox"
  fill "$url"
  id=$(DATABASE_URL=$url "$necmail" campaign create --report 1 --list members)
  sink_start=$(sink_ticks)
  env "$@" DATABASE_URL="$url" NECMAIL_SMTP_URL="smtp://127.0.0.1:$port" NECMAIL_SMTP_CONNECTIONS=16 \
    /usr/bin/time -v -o "$work/time.txt" "$necmail" campaign send "$id" --wait > "$work/send.txt" 2>&1
  grep -q " $n sent" "$work/send.txt" || { echo "!! $label did not send every message:"; cat "$work/send.txt"; }
  record "$label" "$work/time.txt" "$sink_start"
}

size=
for run in $(seq "$runs"); do
  echo "== run $run of $runs, $n messages each"
  if [ -z "$size" ]; then
    url="sqlite://$work/size.db?mode=rwc"
    fill "$url"
    DATABASE_URL=$url "$necmail" report preview 1 --as member0000001@example.org --out "$work/preview" \
      >/dev/null
    size=$(stat -c %s "$work/preview/preview.eml")
    echo "   message size: $size bytes"
  fi
  if runs_sender smtp-source; then
    sink_start=$(sink_ticks)
    /usr/bin/time -v -o "$work/time.txt" smtp-source -s 16 -d -m "$n" -l "$size" \
      -f bench@example.org -t sink@example.org 127.0.0.1:"$port"
    record smtp-source "$work/time.txt" "$sink_start"
  fi
  if runs_sender sqlite; then
    rm -f "$work"/sqlite.db*
    necmail_run sqlite "sqlite://$work/sqlite.db?mode=rwc"
  fi
  if [ -n "$postgres" ]; then
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db" >/dev/null
    necmail_run postgres "$pg/$pg_db"
  fi
  if runs_sender sqlite+dkim; then
    rm -f "$work"/sqlite.db*
    necmail_run sqlite+dkim "sqlite://$work/sqlite.db?mode=rwc" \
      NECMAIL_DKIM_SELECTOR=bench NECMAIL_DKIM_KEY_FILE="$work/dkim.pem"
  fi
  for label in smtp-source sqlite postgres sqlite+dkim; do
    [ -f "$work/runs-$label" ] && printf '   %-12s %s\n' "$label" "$(tail -1 "$work/runs-$label")"
  done
done

median() {
  sort -n | awk '{ v[NR] = $1 }
    END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
source_rate=
if runs_sender smtp-source; then
  source_rate=$(cut -d' ' -f1 "$work/runs-smtp-source" | median)
fi
echo
echo "== medians of $runs runs, $n messages of $size bytes, 16 connections"
printf '%-14s %12s %16s %10s %10s %16s %11s\n' sender messages/s "CPU s/1000 msgs" "RSS MB" ratio \
  "sink CPU s/1000" "cores busy"
for label in smtp-source sqlite postgres sqlite+dkim; do
  [ -f "$work/runs-$label" ] || continue
  rate=$(cut -d' ' -f1 "$work/runs-$label" | median)
  cpu=$(cut -d' ' -f2 "$work/runs-$label" | median)
  rss=$(cut -d' ' -f3 "$work/runs-$label" | median)
  sink=$(cut -d' ' -f4 "$work/runs-$label" | median)
  busy=$(cut -d' ' -f5 "$work/runs-$label" | median)
  ratio=-
  if [ -n "$source_rate" ]; then
    ratio=$(awk -v a="$rate" -v b="$source_rate" 'BEGIN { printf "%.2f", a / b }')
  fi
  printf '%-14s %12.0f %16.3f %10.0f %10s %16.3f %10.0f%%\n' "$label" "$rate" "$cpu" "$rss" "$ratio" \
    "$sink" "$(awk -v b="$busy" 'BEGIN { print b * 100 }')"
done
if runs_sender sqlite+dkim; then
  signs=$(openssl speed -multi 2 -seconds 3 rsa2048 2>/dev/null \
    | awk '/^rsa 2048 bits/ { print $6 }')
  dkim_rate=$(cut -d' ' -f1 "$work/runs-sqlite+dkim" | median)
  dkim_cpu=$(cut -d' ' -f2 "$work/runs-sqlite+dkim" | median)
  dkim_sink=$(cut -d' ' -f4 "$work/runs-sqlite+dkim" | median)
  echo "openssl speed -multi 2 rsa2048: $signs signs/s; necmail with DKIM:" \
    "$(awk -v a="$dkim_rate" -v b="$signs" 'BEGIN { printf "%.2f", a / b }') of it"
  awk -v c="$dkim_cpu" -v k="$dkim_sink" -v cores="$(nproc)" -v r="$dkim_rate" -v o="$signs" 'BEGIN {
    most = cores * 1000 / (c + k)
    printf "signed, necmail and the sink cost %.3f ms a message: %d cores send at most %.0f a second" \
      " (%.2f of openssl speed), and necmail reached %.2f of that\n", c + k, cores, most, most / o, r / most }'
fi
