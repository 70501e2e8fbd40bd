#!/usr/bin/env bash
# necmail behind a real Postfix, as the README's "Receive mail" step describes.
#
# A throwaway Postfix instance on loopback takes mail for nec.example on a free
# port and relays it over LMTP (relay_domains + transport_maps) to `necmail
# serve`, which runs on a fresh SQLite database in a temporary folder and
# writes its own mail to an outbox folder (no SMTP relay). swaks then sends,
# through Postfix:
#   - a join to members-join@ (and the reply to its confirmation email);
#   - a leave to members-leave@;
#   - the mailto unsubscribe, leave+TOKEN@, with the token of a real campaign
#     message's List-Unsubscribe header;
#   - a message from a campaign message's VERP address bounce+TOKEN@ to an
#     address Postfix cannot deliver to, so that Postfix sends its own RFC 3464
#     bounce to bounce+TOKEN@, which it relays to necmail.
# It waits until Postfix's queue is empty, then prints `necmail events ls` and
# `necmail bounces ls`.
#
# Run it as root, with postfix and swaks installed (apt-get install postfix
# swaks); the system's Postfix and /etc/postfix are left alone:
#   scripts/postfix-demo.sh                   # builds target/release/necmail
#   NECMAIL_BIN=path/to/necmail scripts/postfix-demo.sh
# Everything it starts is stopped, and its temporary folder removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "postfix-demo: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run it as root: Postfix's master must start as root"
for tool in swaks python3 postconf postqueue; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install postfix swaks)"
done
master_bin="$(postconf -h daemon_directory)/master"
[ -x "$master_bin" ] || die "no Postfix master at $master_bin"

domain=nec.example
slug=members
work=$(mktemp -d /tmp/postfix-demo.XXXXXX)
chmod 755 "$work" # Postfix's daemons run as the postfix user
pf=$work/postfix
server_pid=
master_pid=

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$master_pid" ] && kill -0 "$master_pid" 2>/dev/null; then
    kill -TERM "$master_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$master_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$master_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Shows the last lines of the logs, for a failure.
logs() {
  echo "--- necmail serve's log:" >&2
  tail -n 30 "$work/serve.log" >&2 2>/dev/null || true
  echo "--- Postfix's log:" >&2
  tail -n 30 "$pf/maillog" >&2 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
smtp_port=$(free_port)
lmtp_port=$(free_port)
http_port=$(free_port)

# Waits up to 10 seconds until something listens on 127.0.0.1:PORT.
wait_port() { # PORT WHAT
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  logs
  die "$2 is not listening on 127.0.0.1:$1 after 10 s"
}

if [ -z "${NECMAIL_BIN:-}" ]; then
  cargo build --quiet --locked --release
  NECMAIL_BIN=$PWD/target/release/necmail
fi
necmail=$NECMAIL_BIN
[ -x "$necmail" ] || die "no necmail binary at $necmail"

export DATABASE_URL="sqlite://$work/necmail.db?mode=rwc" NECMAIL_OUTBOX_DIR="$work/outbox" \
  NECMAIL_LOG=warn NECMAIL_SECRET=demo-secret-demo-secret-demo-secret \
  NECMAIL_FROM="NEC Report <reports@$domain>" NECMAIL_HTTP_ADDR="127.0.0.1:$http_port" \
  NECMAIL_PUBLIC_URL="http://127.0.0.1:$http_port" NECMAIL_METRICS_ADDR=off \
  NECMAIL_ADMIN_ADDR=off NECMAIL_INBOUND_ADDR="127.0.0.1:$lmtp_port" TZ=UTC NECMAIL_TIMEZONE=UTC
unset NECMAIL_SMTP_URL

echo "== necmail: the list $slug with jo, sam and gone@nosuch.example, and one campaign"
$necmail list create "$slug" --name "Party members" >/dev/null
printf 'email\njo@example.org\nsam@example.org\ngone@nosuch.example\n' >"$work/people.csv"
$necmail subscriber import "$work/people.csv" --list "$slug" --confirmed >/dev/null
printf -- '---\ntitle: NEC Report March 2026\n---\nThe report.\n' |
  $necmail report import - >/dev/null
campaign=$($necmail campaign create --report 1 --list "$slug" --now --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
timeout 60 $necmail campaign send "$campaign" --wait >/dev/null ||
  die "campaign send $campaign did not finish within 60 s"

# The outbox message to ADDRESS (its X-Envelope-To).
message_to() { # ADDRESS
  grep -l "^X-Envelope-To: <$1>" "$work/outbox"/*.eml | head -1
}
sam_message=$(message_to sam@example.org) || die "no campaign message to sam in the outbox"
gone_message=$(message_to gone@nosuch.example) || die "no campaign message to gone in the outbox"
unsubscribe=$(grep -o "mailto:leave+[^>?]*@$domain" "$sam_message" | head -1)
verp=$(grep -o "^Return-Path: <bounce+[^>]*>" "$gone_message" | head -1 | sed 's/.*<\(.*\)>/\1/')
[ -n "$unsubscribe" ] || die "no mailto: List-Unsubscribe in $sam_message"
[ -n "$verp" ] || die "no bounce+TOKEN Return-Path in $gone_message"
$necmail campaign status "$campaign" | grep "^deliveries" | sed "s/^/   /"

NECMAIL_LOG=info $necmail serve >"$work/serve.log" 2>&1 &
server_pid=$!
wait_port "$lmtp_port" "necmail serve's LMTP listener"

echo "== Postfix on 127.0.0.1:$smtp_port, relaying $domain to lmtp:inet:127.0.0.1:$lmtp_port"
mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
cp /etc/postfix/master.cf "$pf/etc/master.cf"
cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
myhostname = mx.$domain
mydomain = $domain
myorigin = $domain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtputf8_enable = no
# Take mail for nosuch.example, so that it bounces after the queue, not at RCPT.
smtpd_reject_unlisted_recipient = no
relay_domains = $domain
transport_maps = texthash:$pf/etc/transport
EOF
printf '%s\n' "$domain lmtp:inet:127.0.0.1:$lmtp_port" \
  "nosuch.example error:5.1.1 No such mailbox here" >"$pf/etc/transport"
# No chroot (the instance has no copy of /etc in its queue), and smtpd on a
# free port instead of 25.
postconf -c "$pf/etc" -F '*/*/chroot = n'
postconf -c "$pf/etc" -MX smtp/inet
postconf -c "$pf/etc" -M "127.0.0.1:$smtp_port/inet=127.0.0.1:$smtp_port inet n - n - - smtpd"
chown postfix "$pf/data"
# `postfix check` creates the queue's folders with their owners and modes.
# Its errors go to syslog unless stderr is a terminal, so it runs under
# script(1); maillog_file must be under maillog_file_prefixes, or Postfix
# refuses to start without a word.
MAIL_CONFIG=$pf/etc script -qec "postfix -c '$pf/etc' check" /dev/null ||
  die "postfix check failed for $pf/etc"
# The master itself, rather than `postfix start`, so that its pid is known;
# -w returns once it has started, with its status.
MAIL_CONFIG=$pf/etc timeout 30 "$master_bin" -c "$pf/etc" -w ||
  { logs; die "Postfix's master did not start"; }
master_pid=$(tr -d ' ' <"$pf/queue/pid/master.pid")
wait_port "$smtp_port" "Postfix's smtpd"

send() { # FROM TO SUBJECT
  timeout 30 swaks --silent 2 --server 127.0.0.1 --port "$smtp_port" --from "$1" --to "$2" \
    --header "Subject: $3" --body "sent through Postfix by scripts/postfix-demo.sh" ||
    { logs; die "Postfix did not take the message from $1 to $2"; }
  echo "   $1 -> $2 ($3)"
}
# Waits up to 30 seconds until `necmail events ls --email ADDRESS` shows KIND.
wait_for() { # ADDRESS KIND
  for _ in $(seq 150); do
    $necmail events ls --email "$1" --kind "$2" --json | grep -q '"kind"' && return
    sleep 0.2
  done
  logs
  die "no $2 event for $1 after 30 s"
}

echo "== swaks, through Postfix"
send new@example.org "$slug-join@$domain" "join"
wait_for new@example.org join
confirm=
for _ in $(seq 100); do
  # Only the confirmation email has a confirm+TOKEN Reply-To.
  confirm=$(grep -h -s '^Reply-To:' "$work/outbox"/*.eml |
    grep -o "confirm+[^>@]*@$domain" | head -1) || true
  [ -n "$confirm" ] && break
  sleep 0.1
done
[ -n "$confirm" ] || { logs; die "no confirmation email to new@example.org in the outbox"; }
send new@example.org "$confirm" "Re: Please confirm"
wait_for new@example.org confirm

send jo@example.org "$slug-leave@$domain" "leave"
wait_for jo@example.org leave

send sam@example.org "${unsubscribe#mailto:}" "unsubscribe"
wait_for sam@example.org leave

# From the VERP address of gone@'s campaign message, to gone@nosuch.example,
# which Postfix cannot deliver: Postfix sends its own bounce to bounce+TOKEN@.
send "$verp" gone@nosuch.example "NEC Report March 2026"
wait_for gone@nosuch.example bounce

echo "== waiting for Postfix's queue to empty"
for i in $(seq 151); do
  [ "$i" = 151 ] && { logs; die "Postfix's queue is not empty after 30 s"; }
  postqueue -c "$pf/etc" -p | grep -q '^Mail queue is empty' && break
  sleep 0.2
done

echo "== what Postfix did"
grep -E 'status=(sent|bounced)' "$pf/maillog" |
  sed -E 's/^.* postfix\/([a-z]+)\[[0-9]+\]: [0-9A-F]+: /   \1: /' |
  sed -E 's/, (delay|delays|dsn|conn_use)=[^,]*//g' | cut -c 1-160
echo "== necmail events ls"
$necmail events ls
echo "== necmail bounces ls"
$necmail bounces ls
