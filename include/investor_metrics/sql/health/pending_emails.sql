-- The probe incidents of one service with an e-mail still owed: the opening (not yet notified) and
-- the resolution (resolved, its 'incident_resolved' e-mail not delivered to every recipient).
-- Oldest incident first, so a late delivery still tells the story in order.
SELECT *
FROM (
    SELECT alert.id, alert.rule, alert.severity, alert.category, alert.title, alert.message,
           alert.metric, alert.value, alert.threshold, alert.period_start, alert.period_end,
           alert.triggered_at, alert.run_id, alert.notified, alert.service, alert.resolved_at,
           NOT alert.notified AS opening_owed,
           (alert.resolved_at IS NOT NULL AND (
                NOT EXISTS (
                    SELECT 1
                    FROM investor_metrics.send_log AS sent
                    WHERE sent.kind = %(resolved_kind)s AND sent.send_key = alert.id)
                OR EXISTS (  -- a recipient not yet delivered (one row per recipient)
                    SELECT 1
                    FROM investor_metrics.send_log AS owed
                    WHERE owed.kind = %(resolved_kind)s AND owed.send_key = alert.id
                      AND owed.status NOT IN ('sent', 'refused')))) AS resolution_owed
    FROM investor_metrics.alerts AS alert
    WHERE alert.rule = %(rule)s
      AND alert.service = %(service)s
) AS incident
WHERE opening_owed OR resolution_owed
ORDER BY period_start, id
