-- One row per recipient of one e-mail (kind, send_key); rows that exist are left as they are.
INSERT INTO investor_metrics.send_log (kind, send_key, recipient, period_end)
SELECT %(kind)s, %(send_key)s, recipient, %(period_end)s::timestamptz
FROM unnest(%(recipients)s::text[]) AS recipient
ON CONFLICT (kind, send_key, recipient) DO NOTHING
