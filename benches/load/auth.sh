#!/usr/bin/env bash
# Authenticated vs anonymous requests, login latency, and whether logins stall other requests.
# Needs a running server (release build) at $BASE (default http://127.0.0.1:5399) and wrk.
# Start it with VROOLI__RATE_LIMIT__ENABLED=false, or the limits (rightly) answer 429.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:5399}
DIR=$(cd "$(dirname "$0")" && pwd)
email="bench-$RANDOM$RANDOM@example.org"
cookie=$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
  -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"benchmark password\"}" \
  "$BASE/api/v2/auth/email/signup" | sed -n 's/^set-cookie: session-v2=\([^;]*\).*/\1/ip' | tr -d '\r')
[ -n "$cookie" ] || { echo "sign-up failed" >&2; exit 1; }

echo "== anonymous POST /api/v2/auth/validateSession"
wrk -t2 -c64 -d15s --latency -s "$DIR/post.lua" "$BASE/api/v2/auth/validateSession" | grep -E "Requests/sec|^ +(50|90|99)%"
echo "== authenticated (cookie) POST /api/v2/auth/validateSession"
COOKIE=$cookie wrk -t2 -c64 -d15s --latency -s "$DIR/post.lua" "$BASE/api/v2/auth/validateSession" | grep -E "Requests/sec|^ +(50|90|99)%"

key=$(curl -s -H 'content-type: application/json' -H "cookie: session-v2=$cookie" \
  -d '{"name":"bench","permissions":["ReadAuth"],"limitHard":1000}' "$BASE/api/v2/apiKey" \
  | sed -n 's/.*"key":"\(vrk_[a-z0-9_]*\)".*/\1/p')
echo "== GET /api/v2/apiKeys with the cookie"
wrk -t2 -c64 -d15s --latency -H "Cookie: session-v2=$cookie" "$BASE/api/v2/apiKeys" | grep -E "Requests/sec|^ +(50|90|99)%"
echo "== GET /api/v2/apiKeys with an API key"
wrk -t2 -c64 -d15s --latency -H "X-API-Key: $key" "$BASE/api/v2/apiKeys" | grep -E "Requests/sec|^ +(50|90|99)%"

echo "== login latency (20 sequential logins)"
for _ in $(seq 20); do
  curl -s -o /dev/null -w '%{time_total}\n' -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" "$BASE/api/v2/auth/email/login"
done | sort -n | awk '{a[NR]=$1} END {printf "min %.1f ms, median %.1f ms, max %.1f ms\n", a[1]*1000, a[int(NR/2)+1]*1000, a[NR]*1000}'

echo "== /healthcheck while 4 clients log in back to back"
pids=()
for _ in $(seq 4); do
  ( while true; do curl -s -o /dev/null -H 'content-type: application/json' \
      -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" "$BASE/api/v2/auth/email/login"; done ) &
  pids+=($!)
done
sleep 1
wrk -t2 -c64 -d10s --latency "$BASE/healthcheck" | grep -E "Requests/sec|^ +(50|90|99)%"
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
