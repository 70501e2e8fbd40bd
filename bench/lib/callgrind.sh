# What the callgrind benches share, sourced by bench/profile.sh and
# bench/bounces.sh: valgrind itself, and what a profile counted.
# Instruction and allocation counts do not depend on the load of the machine.

# Installs valgrind (Debian's) when it is missing.
callgrind_needed() {
  command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
}

callgrind_instructions() { # profile: every instruction it counted
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

# Prints the instructions and the allocations (calls of malloc, calloc and
# realloc, whoever made them: sqlx, tokio, necmail) in all and per unit.
callgrind_counts() { # profile units unit-name
  local total
  total=$(callgrind_instructions "$1")
  awk -v t="$total" -v n="$2" -v u="$3" 'BEGIN {
    printf "instructions: %d in all, %.0f per %s\n", t, t / n, u }'
  awk -v n="$2" -v u="$3" '
    /^c?fn=\([0-9]+\)/ { match($0, /\([0-9]+\)/); id = substr($0, RSTART + 1, RLENGTH - 2)
      name = substr($0, RSTART + RLENGTH + 1); if (name != "") names[id] = name
      if ($0 ~ /^cfn=/) callee = names[id] }
    /^calls=/ { split(substr($0, 7), c, " "); if (callee ~ /^(malloc|calloc|realloc)$/) a += c[1] }
    END { printf "allocations: %d in all, %.1f per %s\n", a, a / n, u }' "$1"
}

# Prints the 40 functions with the most instructions, inclusive.
callgrind_top() { # profile
  local total
  total=$(callgrind_instructions "$1")
  echo "== top functions, inclusive (share of all instructions)"
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk -v t="$total" 'shown < 40 && /^ *[0-9,]+ \(/ { c = $1; gsub(",", "", c)
      sub(/^ *[0-9,]+ \( *[0-9.]+%\) */, ""); shown++
      printf "%5.1f%%  %s\n", 100 * c / t, substr($0, 1, 150) }'
}
