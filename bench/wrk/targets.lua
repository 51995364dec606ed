-- One message per request, rotating over the "token queue" lines of BENCH_TARGETS (token "-"
-- for none), so many tenants and queues share the load. Requests are built once in init().
local requests = {}
local n = 0
local nextIndex = 0
local threads = 0

-- Runs in the main state: gives each thread its own starting point, so threads do not hit
-- the same queue in step.
function setup(thread)
  threads = threads + 1
  thread:set("startAt", threads * 97)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_TARGETS")) do
    local token, queue = line:match("^(%S+) (%S+)$")
    local headers = { ["Content-Type"] = "application/json" }
    if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
    n = n + 1
    requests[n] = wrk.format("POST", wrk.path, headers,
      '{"queue":"' .. queue .. '","payload":' .. PAYLOAD .. '}')
  end
  nextIndex = startAt % n
end

function request()
  nextIndex = nextIndex % n + 1
  return requests[nextIndex]
end
