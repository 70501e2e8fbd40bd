#!/usr/bin/env bash
# Measures `necmail serve` under load with wrk, on SQLite, in one run:
#   - the RFC 8058 one-click unsubscribe (POST /u/TOKEN, a different
#     subscriber each request, so every request writes),
#   - POST /subscribe as JSON (a new address each request: a sign-up
#     stored and a confirmation email written to the outbox),
#   - GET /static/style.css, a trivial static route: the server's ceiling.
#
#   bench/http.sh [SECONDS] [CONNECTIONS]      (default 10 s, 32 connections)
#
# Prints requests/s and latency percentiles for each, and each rate as a
# fraction of the static route's.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
conns=${2:-32}
subscribers=${NECMAIL_BENCH_SUBSCRIBERS:-400000}
port=${NECMAIL_BENCH_HTTP_PORT:-18080}
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

cargo build --release --quiet
necmail=$PWD/target/release/necmail
secret=bench-secret-bench-secret-bench-secret
export DATABASE_URL="sqlite://$work/bench.db?mode=rwc" NECMAIL_OUTBOX_DIR="$work/outbox" NECMAIL_LOG=warn \
  NECMAIL_SECRET=$secret NECMAIL_HTTP_ADDR=127.0.0.1:$port NECMAIL_PUBLIC_URL=http://127.0.0.1:$port \
  NECMAIL_SUBSCRIBE_PER_IP_PER_HOUR=1000000 NECMAIL_CONFIRMATIONS_PER_ADDRESS_PER_DAY=1000 \
  NECMAIL_CONFIRMATIONS_PER_HOUR=1000000 NECMAIL_METRICS_ADDR=off NECMAIL_INBOUND_ADDR=off NECMAIL_ADMIN_ADDR=off

echo "== $subscribers confirmed subscribers on one list"
awk -v n="$subscribers" 'BEGIN { print "email"; for (i = 1; i <= n; i++) printf "member%07d@example.org\n", i }' > "$work/subscribers.csv"
$necmail list create members --name "Party members" >/dev/null
$necmail subscriber import "$work/subscribers.csv" --list members --confirmed >/dev/null

# Unsubscribe tokens for every subscriber (ids 1..n, list 1), sealed as
# src/tokens.rs seals them: a 10-byte tag, HMAC-SHA256 over the version,
# the purpose and the varint payload, then the payload XORed with
# HMAC-SHA256(enc key, tag, purpose); both keys are derived from SHA-256 of
# the secret.
python3 - "$secret" "$subscribers" > "$work/paths.txt" <<'PY'
import base64, hashlib, hmac, sys
root = hashlib.sha256(sys.argv[1].encode()).digest()
mac_key = hmac.new(root, b"necmail token mac", hashlib.sha256).digest()
enc_key = hmac.new(root, b"necmail token enc", hashlib.sha256).digest()
def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80); v >>= 7
    out.append(v)
    return bytes(out)
for sub in range(1, int(sys.argv[2]) + 1):
    payload = varint(sub) + varint(1)
    tag = hmac.new(mac_key, bytes([2]) + b"u" + payload, hashlib.sha256).digest()[:10]
    stream = hmac.new(enc_key, tag + b"u", hashlib.sha256).digest()
    sealed = bytes(p ^ k for p, k in zip(payload, stream))
    print("/u/" + base64.urlsafe_b64encode(tag + sealed).decode().rstrip("="))
PY

cat > "$work/one-click.lua" <<'LUA'
local paths, i = {}, 0
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
wrk.method = "POST"
wrk.body = "List-Unsubscribe=One-Click"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function setup(thread) thread:set("offset", math.floor(#paths / 2) * (i % 2)); i = i + 1 end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, paths[(offset + n) % #paths + 1])
end
LUA
cat > "$work/subscribe.lua" <<'LUA'
local i = 0
function setup(thread) thread:set("prefix", "t" .. i); i = i + 1 end
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/subscribe",  nil,
    '{"email":"' .. prefix .. "-" .. n .. '@example.org","lists":["members"]}')
end
LUA

$necmail serve 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

measure() { # label, path, then wrk options
  local label=$1 path=$2; shift 2
  PATHS="$work/paths.txt" wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" "http://127.0.0.1:$port$path" > "$work/$label.txt"
  local rate p50 p99 errors
  rate=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$work/$label.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$work/$label.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$work/$label.txt")
  errors=$(awk '/Non-2xx/ { print $NF }' "$work/$label.txt")
  printf '%-22s %7d req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$rate" "$p50" "$p99" "${errors:-0}"
  echo "$rate" > "$work/rate-$label"
}

echo "== wrk: 2 threads, $conns connections, ${secs}s each, SQLite, $(nproc) cores"
measure static /static/style.css
measure one-click /u/ -s "$work/one-click.lua"
measure subscribe /subscribe -s "$work/subscribe.lua"
awk -v s="$(cat "$work/rate-static")" -v o="$(cat "$work/rate-one-click")" -v b="$(cat "$work/rate-subscribe")" \
  'BEGIN { printf "one-click / static = %.2f, subscribe / static = %.2f\n", o / s, b / s }'
echo "unsubscribed: $(sqlite3 "$work/bench.db" "SELECT count(*) FROM subscriptions WHERE status = 'unsubscribed'" 2>/dev/null || echo '?'), confirmation emails written: $(ls "$work/outbox" 2>/dev/null | wc -l)"
