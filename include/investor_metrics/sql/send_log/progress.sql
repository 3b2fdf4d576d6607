-- How far one e-mail is: rows of its recipients, how many are final (sent or refused), how many sent.
SELECT count(*)                                            AS total,
       count(*) FILTER (WHERE status IN ('sent', 'refused')) AS final,
       count(*) FILTER (WHERE status = 'sent')              AS sent
FROM investor_metrics.send_log
WHERE kind = %(kind)s AND send_key = %(send_key)s AND recipient = ANY(%(recipients)s::text[])
