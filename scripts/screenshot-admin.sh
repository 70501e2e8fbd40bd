#!/usr/bin/env bash
# Photographs every web admin page at phone (375 px) and desktop (1280 px)
# widths, in headless Chromium driven through chromedriver (WebDriver over
# curl), against a throwaway database with a list, members, a report, a
# paused campaign and a sent one.
#
#   scripts/screenshot-admin.sh [OUT_DIR]
#
# Default: ./screenshots. Writes admin-PAGE-WIDTH.png. NECMAIL_BIN=path
# photographs that binary instead of this tree's debug build.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-screenshots}
for tool in chromium chromedriver jq curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 2; }
done
if [ -n "${NECMAIL_BIN:-}" ]; then
  necmail=$NECMAIL_BIN
else
  cargo build --quiet --bin necmail
  necmail=$PWD/target/debug/necmail
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port=$(free_port)
admin_port=$(free_port)
driver_port=$(free_port)
admin="http://127.0.0.1:$admin_port"

export DATABASE_URL="sqlite://$work/necmail.db?mode=rwc"
export NECMAIL_SECRET="a screenshot secret of some length"
export NECMAIL_PUBLIC_URL="http://127.0.0.1:$http_port"
export NECMAIL_HTTP_ADDR="127.0.0.1:$http_port"
export NECMAIL_ADMIN_ADDR="127.0.0.1:$admin_port"
export NECMAIL_METRICS_ADDR=off
export NECMAIL_OUTBOX_DIR="$work/outbox"
export NECMAIL_SPOOL_DIR="$work/spool"
export NECMAIL_AUTO_DISPATCH=hold
export NECMAIL_SITE_NAME="NEC Report"

$necmail list create members --name "Party members" >/dev/null
for i in 1 2 3; do
  $necmail subscriber add "member$i@example.org" --list members --confirmed >/dev/null
done
$necmail subscriber add "a.very.long.address.of.someone.on.the.council@hackney-and-islington.example.org" \
  --name "Councillor Antonia Featherstonehaugh-Whittingham" --attr role=councillor \
  --attr council=Hackney --list members --confirmed >/dev/null
$necmail subscriber unsubscribe member3@example.org >/dev/null
$necmail suppression add bounced@example.org --reason hard-bounce --note "5.1.1 no such user" >/dev/null
$necmail report import tests/fixtures/reports/clean.md >/dev/null
$necmail campaign create --report 1 --list members --now >/dev/null
$necmail campaign pause 1 >/dev/null
# A second campaign, started: the daemon sends it to the outbox.
$necmail campaign create --report 1 --list members --subject "Report of the NEC meeting" >/dev/null
$necmail campaign send 2 >/dev/null
# Two feed sources served over loopback, the second gone before the poll so
# that it shows its error; meetings from the test calendar and one to come.
feeds_port=$(free_port)
mkdir -p "$work/feeds"
cp tests/fixtures/feeds/nec.rss "$work/feeds/nec.rss"
cp tests/fixtures/feeds/nec.atom "$work/feeds/gone.atom"
python3 -m http.server "$feeds_port" --bind 127.0.0.1 --directory "$work/feeds" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$feeds_port/nec.rss" >/dev/null && break; sleep 0.1; done
export NECMAIL_FEED_ALLOW_PRIVATE=true
$necmail source add "http://127.0.0.1:$feeds_port/nec.rss" --list members >/dev/null
$necmail source add "http://127.0.0.1:$feeds_port/gone.atom" --category NEC >/dev/null
rm "$work/feeds/gone.atom"
$necmail source poll >/dev/null
$necmail meeting import tests/fixtures/feeds/nec-2026.ics >/dev/null
$necmail meeting add "$(date -d '+30 days' +%F)" --title "NEC, the new year's first" >/dev/null
$necmail meeting link 2026-06-16 1 >/dev/null
link=$($necmail admin add owner@example.org --role owner | grep -o 'http://[^ ]*/admin/set-password/[^ ]*')
link=${link/127.0.0.1:8081/127.0.0.1:$admin_port}
$necmail admin add editor@example.org --role editor >/dev/null

$necmail serve 2>"$work/serve.log" &
pids+=($!)
chromedriver --port="$driver_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "$admin/admin/login" >/dev/null && curl -fs "http://127.0.0.1:$driver_port/status" >/dev/null && break
  sleep 0.1
done

# The owner's password, set from the one-time link, and a session.
password="a long enough password"
csrf_of() { grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
csrf=$(curl -fs "$link" | csrf_of)
curl -fs -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "password=$password" \
  --data-urlencode "again=$password" "$link"
csrf=$(curl -fs "$admin/admin/login" | csrf_of)
cookie=$(curl -fs -o /dev/null -D - --data-urlencode "csrf=$csrf" \
  --data-urlencode "email=owner@example.org" --data-urlencode "password=$password" \
  "$admin/admin/login" | grep -i '^set-cookie:' | sed 's/^[^:]*: *necmail_admin=//; s/;.*//')

wd="http://127.0.0.1:$driver_port"
session=$(curl -fs "$wd/session" -H 'Content-Type: application/json' -d '{
  "capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--disable-background-networking", "--no-first-run"]}}}}' | jq -r .value.sessionId)
go() { curl -fs "$wd/session/$session/url" -H 'Content-Type: application/json' -d "{\"url\":\"$1\"}" >/dev/null; }
go "$admin/admin/login"

mkdir -p "$out"
shoot() { # NAME PATH [cookie]
  local name=$1 path=$2
  for width in 375 1280; do
    curl -fs "$wd/session/$session/window/rect" -H 'Content-Type: application/json' \
      -d "{\"width\":$width,\"height\":2200}" >/dev/null
    go "$admin$path"
    curl -fs "$wd/session/$session/screenshot" | jq -r .value | base64 -d >"$out/admin-$name-$width.png"
    echo "wrote $out/admin-$name-$width.png"
  done
}

shoot login /admin/login
curl -fs "$wd/session/$session/cookie" -H 'Content-Type: application/json' \
  -d "{\"cookie\":{\"name\":\"necmail_admin\",\"value\":\"$cookie\",\"path\":\"/admin\"}}" >/dev/null
shoot dashboard /admin
shoot reports /admin/reports
shoot report-new /admin/reports/new
shoot report-edit /admin/reports/1
shoot campaigns /admin/campaigns
shoot campaign-new "/admin/campaigns/new?report=1"
shoot campaign-paused /admin/campaigns/1
shoot campaign-sent /admin/campaigns/2
# The confirmation before a cancel, which a form's POST shows.
for width in 375 1280; do
  curl -fs "$wd/session/$session/window/rect" -H 'Content-Type: application/json' \
    -d "{\"width\":$width,\"height\":2200}" >/dev/null
  go "$admin/admin/campaigns/1"
  curl -fs "$wd/session/$session/execute/sync" -H 'Content-Type: application/json' -d '{
    "script": "document.querySelector(\"form[action$=\\\"/cancel\\\"]\").submit()", "args": []}' >/dev/null
  sleep 0.5
  curl -fs "$wd/session/$session/screenshot" | jq -r .value | base64 -d >"$out/admin-campaign-cancel-$width.png"
  echo "wrote $out/admin-campaign-cancel-$width.png"
done
shoot account /admin/account
shoot accounts /admin/accounts
shoot audit /admin/audit
shoot subscribers /admin/subscribers
shoot subscribers-search "/admin/subscribers?q=a.very"
shoot subscriber /admin/subscribers/4
shoot subscriber-import /admin/subscribers/import
printf 'email,name\nnew1@example.org,New One\nnot an address,Bad Row\n' > "$work/people.csv"
csrf=$(curl -fs -H "Cookie: necmail_admin=$cookie" "$admin/admin/subscribers/import" | csrf_of)
job=$(curl -fs -o /dev/null -w '%{redirect_url}' -H "Cookie: necmail_admin=$cookie" \
  -F "csrf=$csrf" -F list=members -F "file=@$work/people.csv;type=text/csv" \
  "$admin/admin/subscribers/upload")
for _ in $(seq 50); do
  curl -fs -H "Cookie: necmail_admin=$cookie" "$job" | grep -q 'Importing' || break
  sleep 0.1
done
shoot subscriber-import-done "${job#"$admin"}"
shoot lists /admin/lists
shoot suppressions /admin/suppressions
shoot events /admin/events
shoot bounces /admin/bounces
shoot sources /admin/sources
shoot meetings /admin/meetings
# What "Poll every source now" answers, which a form's POST shows.
for width in 375 1280; do
  curl -fs "$wd/session/$session/window/rect" -H 'Content-Type: application/json' \
    -d "{\"width\":$width,\"height\":2200}" >/dev/null
  go "$admin/admin/sources"
  curl -fs "$wd/session/$session/execute/sync" -H 'Content-Type: application/json' -d '{
    "script": "document.querySelector(\"form[action$=\\\"/poll\\\"]\").submit()", "args": []}' >/dev/null
  sleep 1
  curl -fs "$wd/session/$session/screenshot" | jq -r .value | base64 -d >"$out/admin-sources-polled-$width.png"
  echo "wrote $out/admin-sources-polled-$width.png"
done
curl -fs -X DELETE "$wd/session/$session" >/dev/null
