-- Claim the send-log row of one e-mail (kind, send_key); a row that exists is left as it is.
-- A concurrent sender of the same key blocks here until the first one commits or rolls back.
INSERT INTO investor_metrics.send_log (kind, send_key)
VALUES (%(kind)s, %(send_key)s)
ON CONFLICT (kind, send_key) DO NOTHING
