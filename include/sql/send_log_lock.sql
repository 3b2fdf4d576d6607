-- Lock the claimed row for the whole SMTP conversation and read whether it was already sent.
SELECT status
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s
FOR UPDATE
