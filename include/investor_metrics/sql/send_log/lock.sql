-- The rows of one e-mail's recipients, locked for the short claim transaction (never across SMTP).
SELECT recipient, status, lease_owner, lease_expires_at,
       coalesce(lease_expires_at <= now(), true) AS lease_expired
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s AND recipient = ANY(%(recipients)s::text[])
ORDER BY recipient
FOR UPDATE
