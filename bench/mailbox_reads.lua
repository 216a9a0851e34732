-- wrk script for bench/mailbox_reads.py: Get-Mailbox -Identity for seeded mailboxes.
--
-- Environment: BENCH_TOKEN (a bearer access token for the mail service), BENCH_PATH (the
-- command's path), BENCH_DOMAIN and BENCH_PEOPLE (identities user0000000@domain up to
-- BENCH_PEOPLE - 1, taken in turn from a per-thread offset).

dofile(os.getenv("BENCH_LIB"))

local threads = {}
local next_index = 0

function setup(thread)
  thread:set("offset", next_index * 7919)
  next_index = next_index + 1
  threads[#threads + 1] = thread
end

local path, headers, domain, people
ok, bad, turn, first_error = 0, 0, 0, nil

function init(args)
  path = os.getenv("BENCH_PATH")
  domain = os.getenv("BENCH_DOMAIN")
  people = tonumber(os.getenv("BENCH_PEOPLE"))
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  }
end

function request()
  turn = turn + 1
  local who = string.format("user%07d@%s", (offset + turn) % people, domain)
  return wrk.format("POST", path, headers, '{"identity": "' .. who .. '"}')
end

function response(status, _, body)
  if status == 200 and string.find(body, '"primaryAddress"', 1, true) then
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
