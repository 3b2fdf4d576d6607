-- The critical/high alerts of weekly periods ending in (since, until] whose e-mail is still owed
-- (see send_log/owed.sql). Probe incidents (service set) are the probe DAG's, on-demand alerts their run's.
SELECT alert.*
FROM investor_metrics.alerts AS alert
WHERE alert.id IN (
        SELECT owed.send_key
        FROM investor_metrics.send_log AS owed
        WHERE owed.kind = %(kind)s
          AND owed.period_end > %(since)s AND owed.period_end <= %(until)s
          AND (owed.status IN ('pending', 'deferred', 'unknown')
               OR (owed.status = 'sending' AND owed.lease_expires_at <= now())
               OR (owed.status = 'refused' AND NOT owed.refusal_reported)
               OR owed.unknown_outcomes > owed.unknown_reported))
  AND alert.service IS NULL
  AND alert.severity IN ('critical', 'high')
  AND alert.series = 'weekly'
  AND alert.superseded_at IS NULL
ORDER BY alert.period_end, alert.id
