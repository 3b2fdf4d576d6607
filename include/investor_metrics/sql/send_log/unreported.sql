-- Delivery problems of one e-mail the data team has not been told of yet: permanent refusals and
-- attempts whose outcome was unknown.
SELECT recipient, status, smtp_code, last_error, message_id, subject, sent_at, attempts,
       unknown_outcomes, refusal_reported
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s
  AND ((status = 'refused' AND NOT refusal_reported) OR unknown_outcomes > unknown_reported)
ORDER BY recipient
