-- The SMTP server accepted the message: record it, in the transaction that holds the row lock.
UPDATE investor_metrics.send_log
SET status     = 'sent',
    sent_at    = now(),
    recipients = %(recipients)s::text[],
    subject    = %(subject)s,
    message_id = %(message_id)s,
    run_id     = %(run_id)s
WHERE kind = %(kind)s AND send_key = %(send_key)s
