-- Validation asset: how many health checks the period [start, end) has (one row, one number:
-- the checks themselves are counted in PostgreSQL, not fetched).
SELECT count(*) AS checks
FROM investor_metrics.service_health_checks
WHERE checked_at >= :start
  AND checked_at < :end
