-- A search for a surname picked at random from a file (one a line), so
-- that almost every search differs from the ones just before it: what the
-- search costs when no process has answered it before.
-- Arguments: key, then the file of surnames.
local paths = {}

function init(args)
   authenticate(args)
   for line in io.lines(args[2]) do
      if #line > 0 then
         paths[#paths + 1] = "/v1/contacts?q=" .. line
      end
   end
   -- Each thread its own sequence, different on every run.
   math.randomseed(os.time() * 100 + thread_id)
end

function request()
   return wrk.format("GET", paths[math.random(#paths)])
end
