-- What the send log knows about one e-mail (no lock: for reports and tests).
SELECT status, sent_at, recipients, subject, message_id, run_id
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s
