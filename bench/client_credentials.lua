-- wrk script for bench/client_credentials.py: the same client credentials request, with one
-- client assertion reused (as MSAL reuses one for nine minutes), on every connection.
--
-- Environment: BENCH_PATH (the token endpoint's path), BENCH_BODY (a file holding the
-- form-encoded body).

local threads = {}
local body

function setup(thread)
  threads[#threads + 1] = thread
end

ok, bad, first_error = 0, 0, nil

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY")))
  body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.path = os.getenv("BENCH_PATH")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = body
end

function response(status, _, answer)
  if status == 200 and string.find(answer, '"access_token"', 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if first_error == nil then
      first_error = status .. " " .. string.sub(answer, 1, 300)
    end
  end
end

local function json_string(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, _)
  local total_ok, total_bad, errors = 0, 0, {}
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
    local message = thread:get("first_error")
    if message ~= nil and #errors < 5 then
      errors[#errors + 1] = json_string(message)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"ok": %d, "bad": %d, "requests": %d, "duration_us": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "socket_errors": '
      .. '{"connect": %d, "read": %d, "write": %d, "timeout": %d}, "first_errors": [%s]}\n',
    total_ok, total_bad, summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, table.concat(errors, ", ")))
end
