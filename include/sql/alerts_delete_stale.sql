-- A rerun of a period: the weekly-rule alerts of that period that no longer fire (their dedup keys,
-- computed by include/alerts.py) are removed, in the same transaction as the upsert.
DELETE FROM investor_metrics.alerts
WHERE dedup_key = ANY(%(dedup_keys)s::text[])
RETURNING id;
