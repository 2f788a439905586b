-- wrk script for the four benchmark calls. Usage:
--   wrk -t1 -c32 -d10s -s bench/calls.lua URL -- CASE IDS_DIR [PATH_PREFIX]
-- CASE: get | newest | create | transfer. IDS_DIR holds messages.txt and accounts.txt
-- (one id a line). Every request draws random ids / authors. A response counts as an
-- error unless it is HTTP 200 with "status":"success" (Convex answers function errors
-- with 200, so wrk's own non-2xx count would miss them).

local case, ids_dir, prefix
local messages, accounts = {}, {}
local counter = 0
local headers = { ["Content-Type"] = "application/json" }
errors = 0
local threads = {}

local function read_lines(path)
  local out = {}
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then out[#out + 1] = line end
  end
  f:close()
  return out
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  case, ids_dir, prefix = args[1], args[2], args[3] or ""
  math.randomseed(os.time() * 1000 + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
  if case == "get" then
    messages = read_lines(ids_dir .. "/messages.txt")
  elseif case == "transfer" then
    accounts = read_lines(ids_dir .. "/accounts.txt")
  end
end

local function author()
  return string.format("author-%04d", math.random(0, 999))
end

local function call(kind, path, args)
  local body = '{"path":"' .. path .. '","args":' .. args .. ',"format":"convex_encoded_json"}'
  return wrk.format("POST", prefix .. "/api/" .. kind, headers, body)
end

function request()
  if case == "get" then
    return call("query", "messages:get", '{"id":"' .. messages[math.random(#messages)] .. '"}')
  elseif case == "newest" then
    return call("query", "messages:newest_by_author", '{"author":"' .. author() .. '"}')
  elseif case == "create" then
    counter = counter + 1
    return call("mutation", "messages:create",
      '{"author":"' .. author() .. '","body":"bench message ' .. counter .. '"}')
  else
    local a = math.random(#accounts)
    local b = math.random(#accounts - 1)
    if b >= a then b = b + 1 end
    return call("mutation", "accounts:transfer",
      '{"fromId":"' .. accounts[a] .. '","toId":"' .. accounts[b] .. '","amount":1}')
  end
end

function response(status, hdrs, body)
  if status ~= 200 or not string.find(body, '"status":"success"', 1, true) then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("bad response " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local errs = 0
  for _, t in ipairs(threads) do errs = errs + (t:get("errors") or 0) end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"app_errors":%d,"socket_errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    latency.max, errs,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
