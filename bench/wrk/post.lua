-- POST of 1 MiB to the echo app; the body is built once and reused by every request.
dofile("report.lua")
wrk.method = "POST"
wrk.body = string.rep("p", 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
