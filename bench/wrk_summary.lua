-- Shared by the wrk scripts beside this file (loaded with dofile(os.getenv("BENCH_LIB"))):
-- the one summary line bench/common.py reads, "BENCH {json}", from the per-thread counters
-- ok, bad and first_error that each script's response() keeps.

local function json_string(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function bench_summary(threads, summary, latency)
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
