-- bench/wrk.lua: the HTTP side of every benchmark scenario, chosen by BENCH_SCENARIO.
--
--   orders-new      POST /orders, a new Idempotency-Key per request          expects 201
--   orders-replay   POST /orders, always the key BENCH_REPLAY_KEY            expects 200
--   process-new     POST /api/orders/process, a new orderId per request      expects 200, completed
--   process-replay  POST /api/orders/process of the completed order          expects 200, completed
--   workflow-get    GET /api/orders/{BENCH_COMPLETED_ID}                     expects 200, completed
--
-- bench/run.sh sets the environment: BENCH_RUN (a number unique to this run, the "random
-- prefix"), the bodies (the very strings it also hands to pgbench) and the fixtures. New keys and
-- order ids are <BENCH_RUN><thread, 4 digits><counter, 8 digits>, the shape pgbench uses.
--
-- Every response is checked: one with another status, or a workflow that is not completed,
-- counts as "unexpected"; socket errors and timeouts come from wrk's own summary. done() prints
-- one line "BENCH_WRK {json}" for run.sh.

local scenario = os.getenv("BENCH_SCENARIO") or ""
local run = os.getenv("BENCH_RUN") or "0"
local order_body = os.getenv("BENCH_ORDER_BODY")
local wf_head = os.getenv("BENCH_WF_HEAD")
local wf_tail = os.getenv("BENCH_WF_TAIL")
local completed_id = os.getenv("BENCH_COMPLETED_ID")
local completed_body = os.getenv("BENCH_COMPLETED_BODY")
local replay_key = os.getenv("BENCH_REPLAY_KEY")

local json_headers = { ["Content-Type"] = "application/json" }
local expected_status = 200
local must_complete = false   -- the body must show a completed workflow
local dynamic                  -- builds one request when each request differs

if scenario == "orders-new" then
  expected_status = 201
  dynamic = function(n)
    return wrk.format("POST", "/orders",
                      { ["Content-Type"] = "application/json", ["Idempotency-Key"] = n }, order_body)
  end
elseif scenario == "orders-replay" then
  wrk.method, wrk.path, wrk.body = "POST", "/orders", order_body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Idempotency-Key"] = replay_key
elseif scenario == "process-new" then
  must_complete = true
  dynamic = function(n)
    return wrk.format("POST", "/api/orders/process", json_headers, wf_head .. n .. wf_tail)
  end
elseif scenario == "process-replay" then
  must_complete = true
  wrk.method, wrk.path, wrk.body = "POST", "/api/orders/process", completed_body
  wrk.headers["Content-Type"] = "application/json"
elseif scenario == "workflow-get" then
  must_complete = true
  wrk.method, wrk.path = "GET", "/api/orders/" .. completed_id
else
  error("BENCH_SCENARIO must be one of orders-new, orders-replay, process-new, "
        .. "process-replay, workflow-get; got '" .. scenario .. "'")
end

-- Main state: number the threads and keep them, so done() can add up their counters.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Thread states: `id` was set by setup() before init() runs.
function init(args)
  counter = 0
  unexpected = 0
  prefix = run .. string.format("%04d", id)
end

-- Only defined for scenarios whose requests differ; wrk sends its fixed request otherwise.
if dynamic then
  function request()
    counter = counter + 1
    return dynamic(prefix .. string.format("%08d", counter))
  end
end

local completed_marker = '"status": "completed"'

function response(status, headers, body)
  if status ~= expected_status
     or (must_complete and not string.find(body, completed_marker, 1, true)) then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("unexpected") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests": %d, "duration_us": %d, "unexpected": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "status_4xx_5xx": %d, "timeout": %d, '
      .. '"p50_ms": %.3f, "p99_ms": %.3f, "mean_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, latency.max / 1000))
end
