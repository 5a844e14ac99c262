-- POST /v1/contacts, each a new contact. Arguments: key, run number.
-- The number is "+1 555" then run, thread and a counter, fixed width but
-- the counter: unique across threads, runs and repeats of one bench run.
local run_id
local counter = 0

function init(args)
   authenticate(args)
   run_id = tonumber(args[2])
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local digits = string.format("%02d%02d%07d", run_id, thread_id, counter)
   local body = '{"source":"whatsapp","identifier":"+1 555' .. digits
      .. '","name":"Loadtest Contact","tags":["lead"],'
      .. '"custom_fields":{"zipCode":"01234"}}'
   return wrk.format("POST", "/v1/contacts", nil, body)
end
