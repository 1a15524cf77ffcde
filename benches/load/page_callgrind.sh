#!/usr/bin/env bash
# The page GET of page.sh, counted in instructions rather than seconds: starts the given server
# binary under valgrind's callgrind on port 5399 (rate limits off), warms it up, zeroes the
# counters, runs wrk -t1 -c4 for 20 s, and prints the server's instructions per request (user
# space only: the kernel's share is not counted). Unlike page.sh's CPU times these do not move
# with whatever else this 2-core machine is doing, so two builds can be compared one after the
# other. Needs valgrind, wrk, PostgreSQL and Redis; run from a directory whose config.toml the
# binary accepts (the checkout it was built from).
# With KEEP=1 the callgrind output is kept and its path printed, for
# `callgrind_annotate --inclusive=yes <file>` (where the instructions go, by function).
# Usage: benches/load/page_callgrind.sh target/release/vrooli
set -euo pipefail
BIN=${1:?usage: page_callgrind.sh <vrooli binary>}
BASE=http://127.0.0.1:5399
out_dir=$(mktemp -d)
VROOLI__RATE_LIMIT__ENABLED=false VROOLI__SERVER__PORT=5399 \
  valgrind --tool=callgrind --callgrind-out-file="$out_dir/cg.%p" "$BIN" serve \
  > "$out_dir/node.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$out_dir"' EXIT
# Under callgrind start-up takes tens of seconds.
for _ in $(seq 300); do curl -sf "$BASE/healthcheck" >/dev/null && break; sleep 0.5; done
curl -sf "$BASE/healthcheck" >/dev/null || { echo "the server did not start:" >&2; tail -5 "$out_dir/node.log" >&2; exit 1; }
. "$(dirname "$0")/page_setup.sh"
wrk -t1 -c4 -d5s -H "Cookie: session-v2=$cookie" "$url" >/dev/null # warm-up: pool, caches
callgrind_control -z "$server" >/dev/null
out=$(wrk -t1 -c4 -d20s -H "Cookie: session-v2=$cookie" "$url")
callgrind_control -d "$server" >/dev/null
requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
instructions=$(awk '/^totals:/ {print $2}' "$out_dir"/cg.*.1)
echo "$requests requests, $instructions instructions ($(awk -v i="$instructions" -v n="$requests" 'BEGIN {printf "%.0f", i / n}') per request)"
[ -z "${KEEP:-}" ] || echo "callgrind output kept: $(ls "$out_dir"/cg.*.1)"
