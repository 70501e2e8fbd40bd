#!/usr/bin/env bash
# A first look at necmail on its embedded defaults (./necmail.db, ./outbox):
# two lists, subscribers from examples/subscribers.csv, a report, a preview,
# and a campaign sent into the outbox as one .eml file per recipient.
# Safe to run again: imports change nothing the second time, and each run
# sends one more campaign (--again: the same report to the same lists).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release
necmail=target/release/necmail

$necmail list show members >/dev/null 2>&1 \
  || $necmail list create members --name "Party members" --description "NEC reports for members"
$necmail list show councillors >/dev/null 2>&1 \
  || $necmail list create councillors --name "Councillors" --single-opt-in
$necmail subscriber import examples/subscribers.csv --list members --confirmed
$necmail subscriber add ann.hughes@example.org --list councillors >/dev/null
echo
$necmail list ls
echo
$necmail report import examples/nec-report.md
$necmail report preview 1 --as ann.hughes@example.org --out preview
echo
campaign=$($necmail campaign create --report 1 --list members --list councillors --again)
$necmail campaign send "$campaign" --wait
echo
$necmail campaign status "$campaign"
echo
echo "The messages are in ./outbox; open preview/preview.html in a browser to see the email."
