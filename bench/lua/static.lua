-- One fixed request, the URL's: wrk builds it once.
function init(args)
   authenticate(args)
end
