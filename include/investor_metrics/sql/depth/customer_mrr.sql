-- Depth figures (SPEC 4b): each customer's MRR as of each bound instant, in twelfths of a cent
-- (monthly amount x 12, yearly x 1), summed exactly (numeric). "As of t": started_at < t and
-- (ended_at is null or ended_at >= t). Only paid subscriptions, so only customers with MRR > 0
-- as of t get a row: one row per (customer, instant), never a subscription row. The instant is
-- sent as its 1-based position in %(instants)s (cheaper than a timestamptz per row); an MRR beyond
-- bigint comes back null (refused by the caller); unknown_interval: some active subscription has
-- an interval other than month / year (refused).
WITH per_instant AS (
    SELECT s.customer_id,
           t.position,
           sum(s.amount_cents::numeric
               * CASE s.billing_interval WHEN 'month' THEN 12 WHEN 'year' THEN 1 END) AS mrr_twelfths,
           coalesce(bool_or(s.billing_interval IS NULL OR s.billing_interval NOT IN ('month', 'year')),
                    false) AS unknown_interval
    FROM unnest(%(instants)s::timestamptz[]) WITH ORDINALITY AS t(as_of, position)
    JOIN subscriptions AS s
      ON s.started_at < t.as_of
     AND (s.ended_at IS NULL OR s.ended_at >= t.as_of)
    WHERE s.amount_cents > 0
    GROUP BY t.position, s.customer_id
)
SELECT customer_id,
       position AS instant,
       CASE WHEN mrr_twelfths <= 9223372036854775807 THEN mrr_twelfths::bigint END AS mrr_twelfths,
       unknown_interval
FROM per_instant
ORDER BY position, customer_id;
