-- Resolve the open probe incidents of one service that an ok check has followed (at or before the
-- round %(checked_at)s): resolved_at is that first ok check after the incident's last counted
-- failure, the moment the service answered again. Returns the resolved incidents.
WITH resolution AS (
    SELECT alert.id,
           (SELECT min(check_.checked_at)
            FROM investor_metrics.service_health_checks AS check_
            WHERE check_.service = alert.service
              AND check_.ok
              AND check_.checked_at > alert.period_end
              AND check_.checked_at <= %(checked_at)s::timestamptz) AS answered_at
    FROM investor_metrics.alerts AS alert
    WHERE alert.rule = %(rule)s
      AND alert.service = %(service)s
      AND alert.resolved_at IS NULL
)
UPDATE investor_metrics.alerts AS alert
SET resolved_at = resolution.answered_at,
    updated_at  = now()
FROM resolution
WHERE alert.id = resolution.id
  AND resolution.answered_at IS NOT NULL
RETURNING alert.id, alert.rule, alert.severity, alert.category, alert.title, alert.message, alert.metric,
          alert.value, alert.threshold, alert.period_start, alert.period_end, alert.triggered_at,
          alert.run_id, alert.notified, alert.service, alert.resolved_at
