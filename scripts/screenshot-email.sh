#!/usr/bin/env bash
# Renders a report's email as a subscriber sees it and photographs it in
# headless Chromium at phone (375 px) and desktop (800 px) widths.
#
#   scripts/screenshot-email.sh [REPORT.md] [OUT_DIR]
#
# Defaults: tests/fixtures/reports/clean.md, ./screenshots. The subscriber is
# a councillor, so the Local Government jump link shows, on two lists, so the
# footer names both. NECMAIL_BIN=path uses that binary instead of building
# this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."

report=${1:-tests/fixtures/reports/clean.md}
out=${2:-screenshots}
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ -n "${NECMAIL_BIN:-}" ]; then
  necmail=$NECMAIL_BIN
else
  cargo build --quiet --release
  necmail=$PWD/target/release/necmail
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/necmail.db?mode=rwc"

$necmail list create members --name "Party members" >/dev/null
$necmail list create councillors --name "Labour councillors" >/dev/null
$necmail subscriber add jo@example.org --name "Jo Bloggs" --list members --list councillors \
  --attr role=councillor --confirmed >/dev/null
$necmail report import "$report" >/dev/null
$necmail report preview 1 --as jo@example.org --out "$work/preview" >/dev/null

mkdir -p "$out"
for width in 375 800; do
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chrome" \
    --window-size="$width,9000" --screenshot="$out/email-$width.png" \
    "file://$work/preview/preview.html" \
    >/dev/null 2>&1
  echo "wrote $out/email-$width.png"
done
cp "$work/preview/preview.txt" "$out/email.txt"
echo "wrote $out/email.txt"
