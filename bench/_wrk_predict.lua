-- wrk script of the benchmarks: POST /predict with {} (the cached window's forecast), built
-- once; wrk sends the same request on every connection as fast as the answers come back.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
