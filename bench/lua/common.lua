-- The start of every load script (the bench appends the shape's own part).
-- Arguments after `--`: the API key, then the shape's own.
--
-- Each wrk thread gets a number, so that scripts can make values no other
-- thread makes; at the end one machine-readable line goes to stdout.

local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
end

local function authenticate(args)
   wrk.headers["Authorization"] = "Bearer " .. args[1]
end

-- wrk counts a response as a status error when its status is 400 or
-- more; nothing in this API answers 1xx or 3xx, so that is every non-2xx.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%.0f p99_us=%.0f socket_errors=%d non2xx=%d\n",
      summary.requests,
      summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50),
      latency:percentile(99),
      e.connect + e.read + e.write + e.timeout,
      e.status))
end
