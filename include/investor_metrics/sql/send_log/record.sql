-- The outcome of one recipient's SMTP transaction, recorded by the lease holder (no row changes
-- when its lease was taken over meanwhile).
UPDATE investor_metrics.send_log
SET status           = %(status)s::text,
    sent_at          = CASE WHEN %(status)s::text = 'sent' THEN now() ELSE sent_at END,
    unknown_outcomes = unknown_outcomes + CASE WHEN %(new_unknown)s::boolean THEN 1 ELSE 0 END,
    smtp_code        = %(smtp_code)s::integer,
    last_error       = CASE WHEN %(status)s::text = 'sent' THEN last_error ELSE %(error)s::text END,  -- kept: the problem before
    subject          = coalesce(%(subject)s::text, subject),
    message_id       = coalesce(%(message_id)s::text, message_id),
    run_id           = coalesce(%(run_id)s::text, run_id),
    lease_owner      = NULL,
    lease_expires_at = NULL,
    updated_at       = now()
WHERE kind = %(kind)s AND send_key = %(send_key)s AND recipient = %(recipient)s
  AND lease_owner = %(owner)s AND status = 'sending'
RETURNING recipient
