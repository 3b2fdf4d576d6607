-- Usage per customer: events in the period [start, end) and in the last 14 days
-- [since_14d, end). Only customers with an event in either window leave the database.
-- Rows without a customer cannot be attributed (validation reports them).
SELECT customer_id,
       count(*) FILTER (WHERE occurred_at >= %(start)s)     AS events_in_period,
       count(*) FILTER (WHERE occurred_at >= %(since_14d)s) AS events_last_14d
FROM usage_events
WHERE occurred_at >= least(%(start)s::timestamptz, %(since_14d)s::timestamptz)
  AND occurred_at < %(end)s
  AND customer_id IS NOT NULL
GROUP BY customer_id
ORDER BY customer_id;
