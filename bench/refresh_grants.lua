-- wrk script for bench/refresh_grants.py: one rotating refresh-token chain per connection.
--
-- Run with as many threads as connections (-t N -c N): wrk gives each thread its own Lua
-- state but tells a script nothing about connections, so one connection per thread is what
-- makes per-thread state per-chain state. Requests on a connection are sequential (no
-- pipelining with a dynamic request()), so each response carries the token for the next.
--
-- Environment: BENCH_TOKENS (file, one refresh token a line, one line per connection),
-- BENCH_PATH (the token endpoint's path), BENCH_RESOURCES (form-encoded resource values,
-- space-separated, used in turn).

dofile(os.getenv("BENCH_LIB"))

local threads = {}
local tokens = {}
local next_index = 1

for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if #line > 0 then
    tokens[#tokens + 1] = line
  end
end

function setup(thread)
  assert(next_index <= #tokens, "more threads than refresh tokens")
  thread:set("token", tokens[next_index])
  thread:set("chain", next_index)
  next_index = next_index + 1
  threads[#threads + 1] = thread
end

local path, resources, headers
ok, bad, turn, first_error = 0, 0, 0, nil

function init(args)
  path = os.getenv("BENCH_PATH")
  resources = {}
  for value in string.gmatch(os.getenv("BENCH_RESOURCES"), "%S+") do
    resources[#resources + 1] = value
  end
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
  turn = turn + 1
  local body = "grant_type=refresh_token&client_id=bastion-cli&refresh_token=" .. token
    .. "&resource=" .. resources[(turn + chain) % #resources + 1]
  return wrk.format("POST", path, headers, body)
end

function response(status, _, body)
  local fresh = status == 200 and string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if fresh then
    token = fresh
    ok = ok + 1
  else
    bad = bad + 1
    if first_error == nil then
      first_error = status .. " " .. string.sub(body, 1, 300)
    end
  end
end

function done(summary, latency, _)
  bench_summary(threads, summary, latency)
end
