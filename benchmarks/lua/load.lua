-- One request script for every wrk scenario of the benchmark.
-- Arguments after "--": METHOD PATH AUTH TOKENS_FILE [BODY]
--   AUTH is "bearer" (Authorization: Bearer <token>), "raw" (Authorization: <token>) or "none".
--   TOKENS_FILE has one "<token>\t<user id>" line per user, or is "-" for no tokens.
--   BODY is a JSON template: "{user}" becomes the chosen user's id, "{n}" a per-thread counter and
--   "{type}" alternates between "note" and "task".
-- Each request picks a user at random, so load spreads over every user in the file.

local method, path, auth, tokens_file, body_template
local tokens, users = {}, {}
local counter = 0

function init(args)
   method = args[1] or "GET"
   path = args[2] or "/"
   auth = args[3] or "none"
   tokens_file = args[4] or "-"
   body_template = args[5]
   if tokens_file ~= "-" then
      for line in io.lines(tokens_file) do
         local token, user = line:match("^([^\t]+)\t?(.*)$")
         if token then
            tokens[#tokens + 1] = token
            users[#users + 1] = user
         end
      end
   end
   math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function request()
   local headers = {}
   local user = ""
   if #tokens > 0 then
      local i = math.random(#tokens)
      user = users[i]
      if auth == "bearer" then
         headers["Authorization"] = "Bearer " .. tokens[i]
      elseif auth == "raw" then
         headers["Authorization"] = tokens[i]
      end
   end
   local body = nil
   if body_template then
      counter = counter + 1
      local event_type = (counter % 2 == 0) and "note" or "task"
      body = body_template:gsub("{user}", user):gsub("{n}", tostring(counter)):gsub("{type}", event_type)
      headers["Content-Type"] = "application/json"
   end
   return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
