-- Alerts newest first: triggered_at desc, then severity (critical, high, medium, low), then rule.
-- Every filter is optional (null = no filter); current_only leaves out superseded alerts.
SELECT id, rule, severity, category, title, message, metric, value, threshold,
       period_start, period_end, triggered_at, run_id, notified, service, resolved_at, series, superseded_at
FROM investor_metrics.alerts
WHERE (%(period_end)s::timestamptz IS NULL OR period_end = %(period_end)s::timestamptz)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s::text)
  AND (%(since)s::timestamptz IS NULL OR triggered_at >= %(since)s::timestamptz)
  AND (%(series)s::text IS NULL OR series = %(series)s::text)
  AND (NOT %(current_only)s::boolean OR superseded_at IS NULL)
ORDER BY triggered_at DESC,
         CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
         rule,
         dedup_key
LIMIT %(limit)s::bigint;
