-- wrk script for bench/client_credentials.py: the same client credentials request, with one
-- client assertion reused (as MSAL reuses one for nine minutes), on every connection.
--
-- Environment: BENCH_PATH (the token endpoint's path), BENCH_BODY (a file holding the
-- form-encoded body).

dofile(os.getenv("BENCH_LIB"))

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

function done(summary, latency, _)
  bench_summary(threads, summary, latency)
end
