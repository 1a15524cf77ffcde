#!/usr/bin/env bash
# An authenticated page of chat messages: GET /api/v2/chatMessages?chatId=…&take=20 with the
# session cookie (token check, revocation look-up, rate limit, the chat's access query, the page
# query, serialization), wrk -t2 -c64 for 15 s. Needs wrk and a running release server at $BASE
# (default http://127.0.0.1:5399) started with VROOLI__RATE_LIMIT__ENABLED=false (or its limits
# rightly answer 429). Prints the server's CPU per request when PID is the server's process id,
# and PostgreSQL's (every postgres process on this machine: run nothing else against it meanwhile).
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:5399}
. "$(dirname "$0")/page_setup.sh"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL's share: every postgres process's ticks (the pool's backends stay open for the run).
pg_ticks() { for p in $(pgrep -x postgres); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }
[ -n "${PID:-}" ] && before=$(ticks "$PID")
pg_before=$(pg_ticks)
out=$(wrk -t2 -c64 -d15s --latency -H "Cookie: session-v2=$cookie" "$url")
echo "$out" | grep -E "Requests/sec|^ +(50|90|99)%|Non-2xx"
pg_after=$(pg_ticks)
requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
if [ -n "${PID:-}" ]; then
  after=$(ticks "$PID")
  awk -v t=$((after - before)) -v n="$requests" 'BEGIN {printf "server CPU %.2f s = %.3f ms per request\n", t / 100, t * 10 / n}'
fi
awk -v t=$((pg_after - pg_before)) -v n="$requests" 'BEGIN {printf "PostgreSQL CPU %.2f s = %.3f ms per request\n", t / 100, t * 10 / n}'
