-- Lease rows to this sender before it talks SMTP. Taking over an expired 'sending' lease means its
-- holder vanished mid-send: that attempt's outcome is unknown, and is counted as such.
UPDATE investor_metrics.send_log
SET status           = 'sending',
    lease_owner      = %(owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s),
    attempts         = attempts + 1,
    unknown_outcomes = unknown_outcomes + CASE WHEN status = 'sending' THEN 1 ELSE 0 END,
    last_error       = CASE WHEN status = 'sending'
                            THEN 'outcome unknown: the sender ' || coalesce(lease_owner, '?')
                                 || ' vanished mid-send (its lease expired at ' || lease_expires_at::text || ')'
                            ELSE last_error END,
    updated_at       = now()
WHERE kind = %(kind)s AND send_key = %(send_key)s AND recipient = ANY(%(recipients)s::text[])
RETURNING recipient
