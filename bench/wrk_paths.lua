-- wrk script for bench/gateway.py: sends pre-built GET paths, one per line, from a file per
-- thread (PREFIX.0, PREFIX.1, ...), so no two threads share a path (each path carries its own
-- Nonce), and counts answers whose body does not start with the expected prefix. Headers given
-- to wrk with --header go with every request (moto's signed read: its Authorization header).
--
-- Arguments (after `--`): PREFIX EXPECTED_BODY_PREFIX CYCLE
--   CYCLE "1": start again at the first path when the list ends (for the unsigned endpoint);
--   otherwise the last path is sent again (the server refuses the reused nonce, which counts
--   as a bad answer) and the run reports how many requests found the list exhausted.
-- done() prints one line "BENCH_RESULT {json}" and, if any, "BENCH_FIRST_BAD <body>".

local threads = {}
local count = 0

function setup(thread)
   thread:set("id", count)
   table.insert(threads, thread)
   count = count + 1
end

function init(args)
   local prefix = args[1]
   expect = args[2]
   cycle = args[3] == "1"
   paths = {}
   for line in io.lines(prefix .. "." .. id) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   npaths = #paths
   if npaths == 0 then
      error("no paths in " .. prefix .. "." .. id)
   end
   nextpath = 0
   bad = 0
   exhausted = 0
   first_bad = ""
end

function request()
   nextpath = nextpath + 1
   if nextpath > npaths then
      if cycle then
         nextpath = 1
      else
         nextpath = npaths
         exhausted = exhausted + 1
      end
   end
   return wrk.format("GET", paths[nextpath])
end

function response(status, headers, body)
   if status ~= 200 or string.sub(body, 1, #expect) ~= expect then
      bad = bad + 1
      if first_bad == "" then
         first_bad = string.sub(string.gsub(body, "[\r\n]", " "), 1, 300)
      end
   end
end

function done(summary, latency, requests)
   local bad_total, exhausted_total, first = 0, 0, ""
   for _, thread in ipairs(threads) do
      bad_total = bad_total + thread:get("bad")
      exhausted_total = exhausted_total + thread:get("exhausted")
      local fb = thread:get("first_bad")
      if first == "" and fb ~= nil then
         first = fb
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
         .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"mean_us":%.1f,"bad":%d,"exhausted":%d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean, bad_total, exhausted_total))
   if first ~= "" then
      io.write("BENCH_FIRST_BAD " .. first .. "\n")
   end
end
