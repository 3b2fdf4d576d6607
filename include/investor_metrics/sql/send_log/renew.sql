-- Extend this sender's leases before its next SMTP transaction; returns the rows it still holds.
UPDATE investor_metrics.send_log
SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    updated_at       = now()
WHERE kind = %(kind)s AND send_key = %(send_key)s AND lease_owner = %(owner)s AND status = 'sending'
RETURNING recipient
