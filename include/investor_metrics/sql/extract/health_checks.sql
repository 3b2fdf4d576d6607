-- Health checks in [start, end), restricted to the configured services when that list is not
-- empty: one row per service and one total row (is_total, service null). Response times cover ok
-- checks with a response time; p95 is percentile_cont (SPEC 4). latest_ok is the ok flag of the
-- service's latest check in the period (null on the total row).
SELECT service,
       grouping(service) = 1                                            AS is_total,
       count(*)                                                         AS checks,
       count(*) FILTER (WHERE ok)                                       AS ok_checks,
       count(*) FILTER (WHERE NOT ok)                                   AS failed_checks,
       avg(response_ms) FILTER (WHERE ok)::double precision             AS avg_response_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE ok) AS p95_response_ms,
       CASE WHEN grouping(service) = 0
            THEN (array_agg(ok ORDER BY checked_at DESC))[1] END        AS latest_ok
FROM investor_metrics.service_health_checks
WHERE checked_at >= %(start)s
  AND checked_at < %(end)s
  AND (cardinality(%(services)s::text[]) = 0 OR service = ANY(%(services)s::text[]))
GROUP BY GROUPING SETS ((service), ())
ORDER BY grouping(service), service;
