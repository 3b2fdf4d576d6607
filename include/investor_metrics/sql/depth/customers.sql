-- Depth figures (SPEC 4b): one row per customer with MRR > 0 as of start, end, end - 1 month
-- (month_ago) or end - 12 months (year_ago): its MRR as of each of the four, in twelfths of a cent
-- (monthly amount x 12, yearly x 1), summed exactly (numeric; beyond bigint it comes back null,
-- refused by the caller). "As of t": started_at < t and (ended_at is null or ended_at >= t).
-- ended_before_start: some subscription of the customer (any amount) ended before start (new vs
-- reactivation, SPEC 4). unknown_interval: an active subscription's interval is not month / year.
-- year_ago is the earliest of the four instants and end the latest.
WITH paid AS (
    SELECT customer_id,
           amount_cents::numeric
               * CASE billing_interval WHEN 'month' THEN 12 WHEN 'year' THEN 1 END AS mrr,
           (billing_interval IS NULL OR billing_interval NOT IN ('month', 'year')) AS unknown_interval,
           started_at < %(start)s AND (ended_at IS NULL OR ended_at >= %(start)s) AS at_start,
           started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s) AS at_end,
           started_at < %(month_ago)s AND (ended_at IS NULL OR ended_at >= %(month_ago)s) AS at_month_ago,
           started_at < %(year_ago)s AND (ended_at IS NULL OR ended_at >= %(year_ago)s) AS at_year_ago
    FROM subscriptions
    WHERE amount_cents > 0
      AND started_at < %(end)s
      AND (ended_at IS NULL OR ended_at >= %(year_ago)s)
),
per_customer AS (
    SELECT customer_id,
           coalesce(sum(mrr) FILTER (WHERE at_start), 0) AS mrr_start,
           coalesce(sum(mrr) FILTER (WHERE at_end), 0) AS mrr_end,
           coalesce(sum(mrr) FILTER (WHERE at_month_ago), 0) AS mrr_month_ago,
           coalesce(sum(mrr) FILTER (WHERE at_year_ago), 0) AS mrr_year_ago,
           coalesce(bool_or(unknown_interval
                            AND (at_start OR at_end OR at_month_ago OR at_year_ago)), false) AS unknown_interval
    FROM paid
    GROUP BY customer_id
    HAVING bool_or(at_start OR at_end OR at_month_ago OR at_year_ago)
)
SELECT p.customer_id,
       (SELECT min(c.name) FROM customers AS c WHERE c.customer_id = p.customer_id) AS name,
       EXISTS (SELECT 1 FROM subscriptions AS e
               WHERE e.customer_id = p.customer_id AND e.ended_at < %(start)s) AS ended_before_start,
       CASE WHEN mrr_start <= 9223372036854775807 THEN mrr_start::bigint END AS mrr_start_twelfths,
       CASE WHEN mrr_end <= 9223372036854775807 THEN mrr_end::bigint END AS mrr_end_twelfths,
       CASE WHEN mrr_month_ago <= 9223372036854775807 THEN mrr_month_ago::bigint END
           AS mrr_month_ago_twelfths,
       CASE WHEN mrr_year_ago <= 9223372036854775807 THEN mrr_year_ago::bigint END
           AS mrr_year_ago_twelfths,
       unknown_interval
FROM per_customer AS p
ORDER BY p.customer_id;
