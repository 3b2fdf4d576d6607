-- Depth figures (SPEC 4b): one row per customer that a cohort or a movement needs: the customers
-- whose first paid instant (earliest started_at of a subscription with amount_cents > 0) is in
-- [cohorts_from, end), and those with MRR > 0 as of start or as of end. ended_before_start: some
-- subscription of the customer (any amount) ended before start (new vs reactivation, SPEC 4).
WITH first_paid AS (
    SELECT customer_id, min(started_at) AS first_paid_at
    FROM subscriptions
    WHERE amount_cents > 0
    GROUP BY customer_id
),
moving AS (
    SELECT DISTINCT customer_id
    FROM subscriptions
    WHERE amount_cents > 0
      AND ((started_at < %(start)s AND (ended_at IS NULL OR ended_at >= %(start)s))
        OR (started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s)))
),
wanted AS (
    SELECT customer_id FROM first_paid
    WHERE first_paid_at >= %(cohorts_from)s AND first_paid_at < %(end)s
    UNION
    SELECT customer_id FROM moving
)
SELECT w.customer_id,
       (SELECT min(c.name) FROM customers AS c WHERE c.customer_id = w.customer_id) AS name,
       f.first_paid_at,
       EXISTS (SELECT 1 FROM subscriptions AS e
               WHERE e.customer_id = w.customer_id AND e.ended_at < %(start)s) AS ended_before_start
FROM wanted AS w
JOIN first_paid AS f USING (customer_id)
ORDER BY w.customer_id;
