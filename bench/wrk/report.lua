-- Prints one JSON line at the end of a wrk run, so the harness never parses wrk's prose.
-- Latencies are in microseconds; "status" counts responses with a status of 400 or more.
-- The mean latency lets the harness apply Little's law: rate x mean latency = connections that
-- were really being served (wrk only times finished requests, so starved ones are invisible).
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests": %d, "duration_us": %d, "bytes": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, ' ..
        '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
        '"status": %d, "timeout": %d}\n',
        summary.requests, summary.duration, summary.bytes, latency.mean,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
