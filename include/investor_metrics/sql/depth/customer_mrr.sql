-- Depth figures (SPEC 4b): each customer's MRR as of each bound instant, in twelfths of a cent
-- (monthly amount x 12, yearly x 1), exact (numeric, sent as text). "As of t": started_at < t and
-- (ended_at is null or ended_at >= t). Only paid subscriptions, so only customers with MRR > 0
-- as of t get a row: one row per (customer, instant), never a subscription row.
-- unknown_interval: some active subscription has an interval other than month / year (refused).
SELECT s.customer_id,
       t.as_of,
       sum(s.amount_cents::numeric
           * CASE s.billing_interval WHEN 'month' THEN 12 WHEN 'year' THEN 1 END)::text AS mrr_twelfths,
       coalesce(bool_or(s.billing_interval IS NULL OR s.billing_interval NOT IN ('month', 'year')),
                false) AS unknown_interval
FROM unnest(%(instants)s::timestamptz[]) AS t(as_of)
JOIN subscriptions AS s
  ON s.started_at < t.as_of
 AND (s.ended_at IS NULL OR s.ended_at >= t.as_of)
WHERE s.amount_cents > 0
GROUP BY t.as_of, s.customer_id
ORDER BY t.as_of, s.customer_id;
