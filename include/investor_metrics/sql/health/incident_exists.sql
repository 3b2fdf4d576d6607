-- Is there already an incident for this failure streak (its dedup key), or any open incident of the
-- service? Either way no new incident is opened.
SELECT id, dedup_key, resolved_at
FROM investor_metrics.alerts
WHERE rule = %(rule)s
  AND service = %(service)s
  AND (resolved_at IS NULL OR dedup_key = %(dedup_key)s)
