-- wrk `done` hook shared by the wrk scripts: one JSON line with the rate, latency quantiles and
-- error counts (non-2xx answers count as errors, not as throughput).
return function(summary, latency, requests)
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.timeout + e.status
  local secs = summary.duration / 1e6
  io.write(string.format(
    'JSON {"requests":%d,"ok":%d,"errors":%d,"non2xx":%d,"seconds":%.3f,"per_s":%.1f,' ..
    '"ok_per_s":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.requests - e.status, failed, e.status, secs,
    summary.requests / secs, (summary.requests - e.status) / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
