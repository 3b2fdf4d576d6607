-- The alerts whose e-mail went out (called by the notifier after a successful send).
UPDATE investor_metrics.alerts
SET notified = true,
    updated_at = now()
WHERE id = ANY(%(ids)s::text[])
  AND NOT notified
RETURNING id;
