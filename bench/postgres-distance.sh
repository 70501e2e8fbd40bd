#!/usr/bin/env bash
# A campaign sent on PostgreSQL as the database's distance grows: straight to
# the server on loopback, through a proxy hop, and through a proxy that holds
# each chunk 0.25 ms each way (about 2.6 ms a round trip here, as asyncio's
# timers round up). Each send goes to smtp-sink over 16 connections, from a
# fresh database. Prints the rate, necmail's CPU and the server's CPU per
# message (every PostgreSQL process, the backends that exited included), and
# how idle the machine was.
#
#   bench/postgres-distance.sh [RECIPIENTS] [RUNS]     (default 20000 and 2)
#
# NECMAIL_BIN=path measures that binary instead of this tree's release build;
# NECMAIL_BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432) must be
# on this machine, as the server's CPU is read from /proc.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-20000}
runs=${2:-2}
port=${NECMAIL_BENCH_SMTP_PORT:-25251}
proxy_port=${NECMAIL_BENCH_PROXY_PORT:-15432}
pg=${NECMAIL_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
pg_port=$(echo "$pg" | sed -n 's|.*:\([0-9][0-9]*\)$|\1|p')
db=necmail_bench_distance
work=$(mktemp -d)
sink_pid=
proxy_pid=
cleanup() {
  set +e
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${NECMAIL_BIN:-}" ]; then
  necmail=$NECMAIL_BIN
else
  cargo build --release --quiet
  necmail=$PWD/target/release/necmail
fi
export PATH=$PATH:/usr/sbin
command -v smtp-sink >/dev/null || { echo "needs smtp-sink: apt-get install postfix" >&2; exit 2; }
export NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_LOG=warn NECMAIL_SECRET=bench-secret-of-some-length
postmaster=$(pgrep -o -u postgres -x postgres)

smtp-sink -u nobody 127.0.0.1:"$port" 1000 &
sink_pid=$!
awk -v n="$n" 'BEGIN { print "email,name,role"; for (i = 0; i < n; i++)
  printf "member%07d@example.org,Member %d,%s\n", i, i, (i % 10 == 0) ? "councillor" : "member" }' \
  > "$work/subscribers.csv"

# CPU ticks of every PostgreSQL process, and the postmaster's reaped children.
server_ticks() {
  local total=0 pid
  for pid in $(pgrep -u postgres); do
    # shellcheck disable=SC2046
    set -- $(cut -d' ' -f14-17 "/proc/$pid/stat" 2>/dev/null || echo 0 0 0 0)
    if [ "$pid" = "$postmaster" ]; then total=$((total + $1 + $2 + $3 + $4)); else total=$((total + $1 + $2)); fi
  done
  echo "$total"
}
idle_and_all() { awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }

send() { # label, port of the database
  local label=$1 url id s0 s1 i0 i1 a0 a1 t0 t1 user sys
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
  url=$(echo "$pg" | sed "s|:$pg_port\$|:$2|")/$db
  DATABASE_URL=$url "$necmail" list create members --name "Party members" >/dev/null
  DATABASE_URL=$url "$necmail" subscriber import "$work/subscribers.csv" --list members --confirmed \
    >/dev/null 2>&1
  DATABASE_URL=$url "$necmail" report import tests/fixtures/render/three-thousand-words.md >/dev/null
  id=$(DATABASE_URL=$url "$necmail" campaign create --report 1 --list members)
  s0=$(server_ticks)
  read -r i0 a0 < <(idle_and_all)
  t0=$(date +%s.%N)
  DATABASE_URL=$url NECMAIL_SMTP_URL="smtp://127.0.0.1:$port" NECMAIL_SMTP_CONNECTIONS=16 \
    /usr/bin/time -f "%U %S" -o "$work/time.txt" "$necmail" campaign send "$id" --wait \
    > "$work/send.txt" 2>&1
  t1=$(date +%s.%N)
  sleep 0.5 # for the postmaster to reap the backends
  s1=$(server_ticks)
  read -r i1 a1 < <(idle_and_all)
  grep -q " $n sent" "$work/send.txt" || { echo "!! $label did not send every message:"; cat "$work/send.txt"; }
  read -r user sys < "$work/time.txt"
  awk -v n="$n" -v t0="$t0" -v t1="$t1" -v user="$user" -v sys="$sys" \
    -v server=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" -v idle=$((i1 - i0)) -v all=$((a1 - a0)) \
    -v label="$label" 'BEGIN { printf "%-26s %8.0f %14.3f %14.3f %8.0f%%\n", label, n / (t1 - t0),
      (user + sys) / n * 1000, server / hz / n * 1000, idle / all * 100 }'
}

printf '%-26s %8s %14s %14s %9s\n' database messages/s "necmail ms/msg" "server ms/msg" idle
for run in $(seq "$runs"); do
  send "loopback" "$pg_port"
  for delay in 0 0.00025; do
    python3 bench/lib/delay-proxy.py "$proxy_port" "$pg_port" "$delay" &
    proxy_pid=$!
    for _ in $(seq 100); do (: <"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break; sleep 0.05; done
    send "proxy, $delay s each way" "$proxy_port"
    kill "$proxy_pid"
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=
  done
done
