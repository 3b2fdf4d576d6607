-- For new vs reactivation MRR (SPEC 4): did any subscription of the customer end before the
-- period start? Asked only for the customers the subscriptions extract returned.
SELECT customer_id,
       coalesce(bool_or(ended_at < %(start)s), false) AS ended_before_start
FROM subscriptions
WHERE customer_id = ANY(%(customer_ids)s::bigint[])
GROUP BY customer_id
ORDER BY customer_id;
