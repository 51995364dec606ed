-- One message per request to BENCH_QUEUE, with BENCH_TOKEN as the bearer when set.
-- PAYLOAD (the ~200-byte JSON message) is defined by the header bench/lib/wrk.ts prepends.
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"queue":"' .. os.getenv("BENCH_QUEUE") .. '","payload":' .. PAYLOAD .. '}'
