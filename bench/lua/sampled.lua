-- Requests about contacts that exist, picked at random from the sample.
-- Arguments: key, then what to ask (uuid | phone | patch), then the sample
-- file (`uuid digits` a line).
local uuids = {}
local phones = {}
local ask

function init(args)
   authenticate(args)
   ask = args[2]
   for line in io.lines(args[3]) do
      local uuid, digits = line:match("^(%S+) (%S+)$")
      if uuid then
         uuids[#uuids + 1] = uuid
         phones[#phones + 1] = digits
      end
   end
   if ask == "patch" then
      wrk.headers["Content-Type"] = "application/json"
   end
   -- Each thread its own sequence, different on every run.
   math.randomseed(os.time() * 100 + thread_id)
end

function request()
   local i = math.random(#uuids)
   if ask == "uuid" then
      return wrk.format("GET", "/v1/contacts/" .. uuids[i])
   elseif ask == "phone" then
      return wrk.format("GET", "/v1/contacts/phone/" .. phones[i])
   else
      local body = string.format('{"custom_fields": {"zipCode": "%05d"}}', math.random(0, 99999))
      return wrk.format("PATCH", "/v1/contacts/" .. uuids[i], nil, body)
   end
end
