-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- wrk script: GET /dev/devices/<DID> (provision) with the firmware's headers
-- (Content-Type on a GET). Env: GIZ_BENCH_DID. Counts answers other than 200.
local did = os.getenv("GIZ_BENCH_DID") or ""
local threads = {}
bad = 0  -- global: read per thread in done()

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  return wrk.format("GET", "/dev/devices/" .. did)
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("bad") or 0)
  end
  io.write(string.format("non-200 answers: %d\n", total))
end
