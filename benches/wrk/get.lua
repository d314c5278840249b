-- wrk script: plain GETs, reported as one JSON line.
done = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
