-- wrk script: POST the iris sample request as JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("FLEET_BENCHMARK_REQUEST"), "r")
wrk.body = file:read("*a")
file:close()
