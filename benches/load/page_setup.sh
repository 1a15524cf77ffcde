# Sourced by page.sh and page_callgrind.sh: signs up a fresh user at $BASE, makes a chat with 25
# messages, and sets $cookie (the session token) and $url (the page GET of that chat).
email="page-$RANDOM$RANDOM@example.org"
cookie=$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
  -d "{\"name\":\"Bench\",\"email\":\"$email\",\"password\":\"benchmark password\"}" \
  "$BASE/api/v2/auth/email/signup" | sed -n 's/^set-cookie: session-v2=\([^;]*\).*/\1/ip' | tr -d '\r')
[ -n "$cookie" ] || { echo "sign-up failed" >&2; exit 1; }
chat=$(curl -s -H 'content-type: application/json' -H "cookie: session-v2=$cookie" \
  -d '{"name":"Bench chat","botIds":[]}' "$BASE/api/v2/chat" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["chat"]["id"])')
[ -n "$chat" ] || { echo "chat creation failed" >&2; exit 1; }
for i in $(seq 25); do
  curl -s -o /dev/null -H 'content-type: application/json' -H "cookie: session-v2=$cookie" \
    -d "{\"chatId\":\"$chat\",\"text\":\"message $i, of ordinary length, about a hundred bytes long, give or take\"}" \
    "$BASE/api/v2/chatMessage"
done
url="$BASE/api/v2/chatMessages?chatId=$chat&take=20"
