-- A rerun of a period: its rule alerts (these dedup keys) that no longer fire. One that was e-mailed
-- (notified, or a delivered send-log row) is kept and marked superseded_at; any other is deleted.
WITH stale AS (
    SELECT a.id,
           a.notified OR EXISTS (
               SELECT 1 FROM investor_metrics.send_log s
               WHERE s.kind = 'alert' AND s.send_key = a.id AND s.status = 'sent'
           ) AS emailed
    FROM investor_metrics.alerts a
    WHERE a.dedup_key = ANY(%(dedup_keys)s::text[])
),
superseded AS (
    UPDATE investor_metrics.alerts a
    SET superseded_at = now(),
        updated_at = now()
    FROM stale
    WHERE a.id = stale.id AND stale.emailed AND a.superseded_at IS NULL
    RETURNING a.id
),
deleted AS (
    DELETE FROM investor_metrics.alerts a
    USING stale
    WHERE a.id = stale.id AND NOT stale.emailed
    RETURNING a.id
)
SELECT (SELECT count(*) FROM superseded) AS superseded,
       (SELECT count(*) FROM deleted) AS deleted;
