-- wrk script: POST with an empty JSON body, optionally with the session cookie in $COOKIE.
-- wrk -t2 -c64 -d15s -s benches/load/post.lua http://127.0.0.1:5399/api/v2/auth/validateSession
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
local cookie = os.getenv("COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = "session-v2=" .. cookie
end
