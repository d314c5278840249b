-- wrk script: POST a form to the token endpoint with HTTP Basic client authentication, and print
-- one JSON line of results. Environment: BENCH_BODY (the form), BENCH_BASIC (base64 id:secret).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. (os.getenv("BENCH_BASIC") or "")

done = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
