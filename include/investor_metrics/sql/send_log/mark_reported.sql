-- The data team was told of this recipient's refusal / unknown outcomes (same transaction as the
-- delivery of the report).
UPDATE investor_metrics.send_log
SET refusal_reported = refusal_reported OR %(refused)s::boolean,
    unknown_reported = greatest(unknown_reported, %(unknown_outcomes)s::integer),
    updated_at       = now()
WHERE kind = %(kind)s AND send_key = %(send_key)s AND recipient = %(recipient)s
