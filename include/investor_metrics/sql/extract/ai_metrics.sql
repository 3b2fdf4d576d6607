-- AI requests in [start, end): one row per provider and one total row (is_total, provider null).
-- Latency figures cover every request with a latency, errors included: a failed request's
-- latency is time the user waited too. p95 is percentile_cont (linear interpolation, SPEC 4).
SELECT provider,
       grouping(provider) = 1                                     AS is_total,
       count(*)                                                   AS total_requests,
       count(*) FILTER (WHERE request_type = 'chat')              AS chat_requests,
       count(*) FILTER (WHERE request_type = 'api')               AS api_requests,
       count(*) FILTER (WHERE cache_hit)                          AS cache_hits,
       count(*) FILTER (WHERE status = 'error')                   AS errors,
       count(*) FILTER (WHERE status = 'ok')                      AS ok_requests,
       count(*) FILTER (WHERE feedback = 'correct')               AS correct,
       count(*) FILTER (WHERE feedback = 'incorrect')             AS incorrect,
       avg(latency_ms)::double precision                          AS avg_latency_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)   AS p95_latency_ms
FROM ai_requests
WHERE requested_at >= %(start)s
  AND requested_at < %(end)s
GROUP BY GROUPING SETS ((provider), ())
ORDER BY grouping(provider), provider NULLS LAST;
