#!/usr/bin/env bash
# Bounces handled per second through `necmail serve`'s inbound listener, on
# SQLite: N RFC 3464 hard bounces to bounces@, each naming another
# subscriber (so each suppresses an address and records two events), sent
# over one SMTP connection, then N more over one LMTP connection.
#
# It also prints the CPU time serve spent per bounce. With NECMAIL_CALLGRIND=1,
# serve runs under callgrind, which counts from the first bounce to the last
# only, and the instructions and allocations per bounce are printed instead
# (they do not depend on the load of the machine; the rates then mean nothing).
#
#   bench/bounces.sh [N]        (default 10000; NECMAIL_BIN to use a built binary;
#                                NECMAIL_PROFILE_OUT=file keeps the profile)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/callgrind.sh

n=${1:-10000}
port=${NECMAIL_BENCH_INBOUND_PORT:-12525}
http=${NECMAIL_BENCH_HTTP_PORT:-18081}
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${NECMAIL_BIN:-}" ]; then
  cargo build --release --quiet
  NECMAIL_BIN=$PWD/target/release/necmail
fi
necmail=$NECMAIL_BIN
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc" NECMAIL_OUTBOX_DIR="$work/outbox" \
  NECMAIL_LOG=warn NECMAIL_SECRET=bench-secret-bench-secret-bench-secret \
  NECMAIL_FROM="NEC Report <reports@nec.example>" NECMAIL_HTTP_ADDR=127.0.0.1:$http \
  NECMAIL_PUBLIC_URL=http://127.0.0.1:$http NECMAIL_METRICS_ADDR=off \
  NECMAIL_INBOUND_ADDR=127.0.0.1:$port NECMAIL_INBOUND_MAX_CONNECTIONS=4 NECMAIL_ADMIN_ADDR=off

$necmail list create members --name "Party members" >/dev/null
awk -v n="$((2 * n))" 'BEGIN { print "email"; for (i = 1; i <= n; i++) printf "member%07d@example.org\n", i }' \
  > "$work/subscribers.csv"
$necmail subscriber import "$work/subscribers.csv" --list members --confirmed >/dev/null

profile=
if [ -n "${NECMAIL_CALLGRIND:-}" ]; then
  callgrind_needed
  profile=${NECMAIL_PROFILE_OUT:-$work/callgrind.out}
  valgrind --tool=callgrind --callgrind-out-file="$profile" "$necmail" serve 2>"$work/serve.log" &
else
  $necmail serve 2>"$work/serve.log" &
fi
server_pid=$!
for _ in $(seq 1200); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! kill -0 "$server_pid" 2>/dev/null || ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
  echo "bench/bounces.sh: necmail serve did not start listening on 127.0.0.1:$port:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; } # utime + stime
callgrind_command() { # zero or dump: serve's counts
  callgrind_control "--$1" "$server_pid" >/dev/null 2>&1 ||
    { echo "bench/bounces.sh: callgrind_control --$1 failed" >&2; exit 1; }
}

send() { # PROTOCOL FIRST
  python3 - "$port" "$n" "$1" "$2" <<'PY'
import smtplib, sys, time
port, n, proto, first = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def dsn(address):
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: bounces@nec.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{address}>: user unknown\r\n\r\n--B--\r\n"
    )
client = smtplib.LMTP("127.0.0.1", port) if proto == "lmtp" else smtplib.SMTP("127.0.0.1", port)
client.ehlo_or_helo_if_needed()
start = time.monotonic()
for i in range(first, first + n):
    refused = client.sendmail("", ["bounces@nec.example"], dsn(f"member{i:07d}@example.org"))
    assert not refused, refused
elapsed = time.monotonic() - start
client.quit()
print(f"{proto.upper():5} {n} bounces in {elapsed:.2f} s: {n / elapsed:.0f} bounces/s")
PY
}
echo "== $n hard bounces to bounces@, each suppressing another subscriber (SQLite)"
if [ -n "$profile" ]; then
  callgrind_command zero
fi
ticks=$(cpu_ticks)
send smtp 1
send lmtp $((n + 1))
ticks=$(( $(cpu_ticks) - ticks ))
if [ -n "$profile" ]; then
  callgrind_command dump
  callgrind_counts "$profile.1" "$((2 * n))" bounce
else
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$((2 * n))" \
    'BEGIN { printf "serve CPU: %.3f ms per bounce\n", 1000 * t / hz / n }'
fi
suppressed=$($necmail suppression ls --json | grep -c '"hard-bounce"')
echo "suppressed: $suppressed of $((2 * n))"
