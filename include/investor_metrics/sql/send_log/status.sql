-- What the send log knows about one e-mail, one row per recipient (no lock: for reports and tests).
SELECT recipient, status, sent_at, subject, message_id, run_id, attempts, smtp_code, last_error,
       unknown_outcomes, unknown_reported, refusal_reported, lease_owner, lease_expires_at, period_end
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s
ORDER BY recipient
