-- Subscriptions a period's metrics can see (SPEC 4: "active as of t" = started_at < t and
-- (ended_at is null or ended_at >= t)). The latest instant asked about is the period end and the
-- earliest is min(start, end - 28 days, end - 1 month), so a row is needed when it started before
-- end and had not ended before that earliest instant. The table is small: rows, not aggregates.
SELECT subscription_id,
       customer_id,
       billing_interval,
       amount_cents,
       started_at,
       ended_at
FROM subscriptions
WHERE started_at < %(end)s
  AND (ended_at IS NULL OR ended_at >= %(earliest)s)
ORDER BY customer_id, started_at, subscription_id;
