-- E-mails of one kind still owed for weekly periods ending in (since, until]: a recipient not yet
-- delivered (pending, deferred, unknown, or leased by a sender that vanished), or a delivery problem
-- not yet reported to the data team. On-demand reports (keys on_demand|...) are never swept.
SELECT send_key, max(period_end) AS period_end
FROM investor_metrics.send_log
WHERE kind = %(kind)s
  AND period_end > %(since)s AND period_end <= %(until)s
  AND left(send_key, 10) <> 'on_demand|'
  AND (status IN ('pending', 'deferred', 'unknown')
       OR (status = 'sending' AND lease_expires_at <= now())
       OR (status = 'refused' AND NOT refusal_reported)
       OR unknown_outcomes > unknown_reported)
GROUP BY send_key
ORDER BY max(period_end), send_key
