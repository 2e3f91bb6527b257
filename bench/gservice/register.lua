-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- wrk script: POST /dev/devices (device register) with a unique MAC per
-- request, as firmware sends it. Env: GIZ_BENCH_PK (product key).
-- Counts answers other than 201 and prints them at the end.
local pk = os.getenv("GIZ_BENCH_PK") or ""
local threads = {}
local counter = 0
tid = 0
bad = 0  -- global: read per thread in done()

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  counter = counter + 1
  local mac = string.format("%02X%010X", tid, counter)
  local body = "passcode=BENCHPASS1&mac=" .. mac .. "&product_key=" .. pk .. "&type=normal"
  return wrk.format("POST", "/dev/devices", nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("bad") or 0)
  end
  io.write(string.format("non-201 answers: %d\n", total))
end
