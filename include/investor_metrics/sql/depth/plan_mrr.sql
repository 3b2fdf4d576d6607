-- Depth figures (SPEC 4b segments.by_plan): one row per (customer, plan) pair with a subscription
-- active as of start or as of end (any amount, so a free plan is listed): its MRR as of start and
-- as of end in twelfths of a cent (summed exactly; beyond bigint it comes back null, refused by the
-- caller), and whether the pair had a subscription of that plan ended before start (new vs
-- reactivation on that plan). A null plan is its own group.
WITH flagged AS (
    SELECT customer_id,
           plan,
           amount_cents::numeric
               * CASE billing_interval WHEN 'month' THEN 12 WHEN 'year' THEN 1 END AS mrr_twelfths,
           (billing_interval IS NULL OR billing_interval NOT IN ('month', 'year')) AS unknown_interval,
           started_at < %(start)s AND (ended_at IS NULL OR ended_at >= %(start)s) AS at_start,
           started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s) AS at_end,
           ended_at < %(start)s AS ended_before_start
    FROM subscriptions
    WHERE customer_id IN (
        SELECT customer_id FROM subscriptions
        WHERE started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(start)s)
    )
),
pairs AS (
    SELECT customer_id,
           plan,
           coalesce(sum(mrr_twelfths) FILTER (WHERE at_start), 0) AS mrr_start,
           coalesce(sum(mrr_twelfths) FILTER (WHERE at_end), 0) AS mrr_end,
           coalesce(bool_or(ended_before_start), false) AS ended_before_start,
           coalesce(bool_or(unknown_interval AND (at_start OR at_end)), false) AS unknown_interval
    FROM flagged
    GROUP BY customer_id, plan
    HAVING bool_or(at_start OR at_end)
)
SELECT customer_id,
       plan,
       CASE WHEN mrr_start <= 9223372036854775807 THEN mrr_start::bigint END AS mrr_start_twelfths,
       CASE WHEN mrr_end <= 9223372036854775807 THEN mrr_end::bigint END AS mrr_end_twelfths,
       ended_before_start,
       unknown_interval
FROM pairs
ORDER BY customer_id, plan;
