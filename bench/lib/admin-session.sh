# What the admin benches share, sourced by bench/admin.sh and
# bench/admin-campaigns.sh: the binary they measure, and the owner's
# signed-in session. They set $base (the admin's URL, as NECMAIL_ADMIN_URL)
# and $work (a scratch folder), and export DATABASE_URL, before calling
# admin_session.

bench_password="a bench password, long enough"

# Sets $necmail: NECMAIL_BENCH_BIN (to measure another revision), or this
# tree's release build, built now (into CARGO_TARGET_DIR when that is set).
bench_binary() {
  if [ -n "${NECMAIL_BENCH_BIN:-}" ]; then
    necmail=$NECMAIL_BENCH_BIN
  else
    cargo build --release --quiet --locked --bin necmail
    necmail=${CARGO_TARGET_DIR:-$PWD/target}/release/necmail
  fi
}

field() { # name: the value of the first input named $1 in the HTML on stdin
  grep -o "name=\"$1\" value=\"[^\"]*\"" | head -1 | sed 's/.*value="//; s/"$//'
}

# Makes the owner bench@example.org with `necmail admin add`, starts
# `necmail serve` (its pid in $server_pid, its log in $work/serve.log), sets
# the password through the one-time link and signs in, as a person would:
# the session's cookie is left in $cookie.
admin_session() { # label
  local label=$1 link csrf
  link=$("$necmail" admin add bench@example.org --role owner \
    | grep -o "$base/admin/set-password/[^ ]*")
  "$necmail" serve > "$work/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "$base/admin/login" && break; sleep 0.1; done
  csrf=$(curl -s "$link" | field csrf)
  curl -s -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "password=$bench_password" \
    --data-urlencode "again=$bench_password" "$link"
  csrf=$(curl -s "$base/admin/login" | field csrf)
  cookie=$(curl -s -D - -o /dev/null --data-urlencode "csrf=$csrf" \
    --data-urlencode "email=bench@example.org" --data-urlencode "password=$bench_password" \
    "$base/admin/login" | grep -i '^set-cookie:' | sed 's/^[^:]*: //; s/;.*//')
  [ -n "$cookie" ] || { echo "$label: could not sign in" >&2; exit 1; }
}
