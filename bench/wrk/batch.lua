-- BENCH_BATCH messages (each PAYLOAD) per request to BENCH_QUEUE.
local token = os.getenv("BENCH_TOKEN") or ""
local count = tonumber(os.getenv("BENCH_BATCH"))
local messages = {}
for i = 1, count do messages[i] = '{"payload":' .. PAYLOAD .. '}' end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"queue":"' .. os.getenv("BENCH_QUEUE") .. '","messages":[' ..
  table.concat(messages, ",") .. ']}'
