-- churned_customers of the stored weekly snapshots of the given period ends (the churn-spike
-- history: weekly series only, never an on-demand report).
-- period_start comes along so the caller can check the stored week is the same calendar week.
SELECT period_end,
       period_start,
       (snapshot -> 'business_health' ->> 'churned_customers')::bigint AS churned_customers
FROM investor_metrics.snapshots
WHERE series = 'weekly'
  AND period_end = ANY(%(period_ends)s::timestamptz[]);
