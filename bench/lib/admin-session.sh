# shellcheck shell=bash
# What the admin benches share, sourced by bench/admin.sh and
# bench/admin-campaigns.sh: the binary they measure, the owner's signed-in
# session, and the timing of pages. They set $base (the admin's URL, as
# NECMAIL_ADMIN_URL), $work (a scratch folder) and $requests (how many
# requests a page), and export DATABASE_URL, before calling admin_session.

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

# The CPU clock ticks each process given has used so far, a line "pid ticks"
# each: utime and stime, fields 14 and 15 of /proc/PID/stat, counted after the
# bracketed command name, which may hold spaces. A process gone is left out.
ticks() { # pid...
  local pid
  for pid in "$@"; do
    sed -n "s/^[0-9]* (.*) /$pid /p" "/proc/$pid/stat" 2>/dev/null || true
  done | awk '{ print $1, $13 + $14 }'
}

# The ticks between two readings of `ticks`, over the processes in the
# second: one that started in between counts from nothing.
spent() { # before after
  awk 'NR == FNR { t[$1] = $2; next } { s += $2 - t[$1] } END { print s + 0 }' \
    <(echo "$1") <(echo "$2")
}

# The ticks, as `ticks` prints them, of the PostgreSQL backends serving
# DATABASE_URL's database; nothing on SQLite. Parallel workers, which end
# with their query, are not among them: the figure is a lower bound when a
# plan has a Gather.
database_ticks() {
  local db=${DATABASE_URL##*/}
  # shellcheck disable=SC2046 # one pid a word
  case $DATABASE_URL in
    postgres*) ticks $(pgrep -f "^postgres: .* ${db%%\?*} " || true) ;;
  esac
}

# Requests the URLs in file $2 one after another over one connection, as the
# signed-in owner, and prints their p50 and p95 in ms, and the CPU time per
# request of the server and, on PostgreSQL, of the database's backends:
# wall-clock times wander with the load of a shared machine, CPU time less.
measure() { # label urls-file
  local label=$1 config=$work/curl.txt times=$work/times.txt cpu db
  sed 's/.*/url = "&"\noutput = "\/dev\/null"/' "$2" > "$config"
  db=$(database_ticks)
  cpu=$(ticks "$server_pid")
  curl -s -H "Cookie: $cookie" -w '%{http_code} %{time_total}\n' -K "$config" > "$times"
  cpu=$(spent "$cpu" "$(ticks "$server_pid")")
  case $DATABASE_URL in
    postgres*) db=$(spent "$db" "$(database_ticks)") ;;
  esac
  if grep -qv '^200 ' "$times"; then
    echo "$label: a request failed: $(grep -v '^200 ' "$times" | head -1)" >&2
    exit 1
  fi
  awk '{print $2 * 1000}' "$times" | sort -n | awk -v label="$label" -v cpu="$cpu" -v db="$db" \
    -v hz="$(getconf CLK_TCK)" '
    { t[NR] = $1 }
    END {
      printf "  %-44s p50 %6.1f ms  p95 %6.1f ms  CPU %5.2f ms", label, t[int(NR * 0.5)],
             t[int(NR * 0.95)], cpu * 1000 / hz / NR
      if (db != "") printf " + db %5.2f ms", db * 1000 / hz / NR
      printf "  (%d requests)\n", NR
    }'
}

# A file of $requests copies of the admin's URL with path $1; prints its name.
repeat() { # path
  for _ in $(seq "$requests"); do echo "$base$1"; done > "$work/urls.txt"
  echo "$work/urls.txt"
}

# Measures $requests requests to the admin's page at path $2, under label $1.
page() { measure "$1" "$(repeat "$2")"; } # label path
