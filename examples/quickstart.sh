#!/usr/bin/env bash
# A first look at necmail on its embedded defaults: creates two lists in
# ./necmail.db, imports examples/subscribers.csv and shows the result.
# Safe to run again: the second import changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release
necmail=target/release/necmail

$necmail list show members >/dev/null 2>&1 \
  || $necmail list create members --name "Party members" --description "NEC reports for members"
$necmail list show councillors >/dev/null 2>&1 \
  || $necmail list create councillors --name "Councillors" --single-opt-in
$necmail subscriber import examples/subscribers.csv --list members --confirmed
$necmail subscriber add ann.hughes@example.org --list councillors
echo
$necmail list ls
echo
$necmail subscriber ls --attr role=councillor
