-- Depth figures (SPEC 4b retention.cohorts), aggregated in PostgreSQL: one row per (cohort,
-- checkpoint). A cohort is bound as its position in %(cohort_starts)s / %(cohort_ends)s (the local
-- month's start, and min(next month's start, end)); its members are the customers whose first paid
-- instant (earliest started_at of a subscription with amount_cents > 0) lies in [start, end). The
-- checkpoints are bound as pairs (%(checkpoint_cohorts)s[i], %(checkpoint_instants)s[i]). Per row:
-- customers (the cohort's size), active (members with MRR > 0 as of the checkpoint) and
-- mrr_twelfths (their MRR, twelfths of a cent, exact; beyond bigint null, refused by the caller).
-- "As of t": started_at < t and (ended_at is null or ended_at >= t).
WITH cohort AS (
    SELECT position::int AS cohort, starts_at, ends_at
    FROM unnest(%(cohort_starts)s::timestamptz[], %(cohort_ends)s::timestamptz[])
         WITH ORDINALITY AS c(starts_at, ends_at, position)
),
checkpoint AS (
    SELECT cohort, as_of
    FROM unnest(%(checkpoint_cohorts)s::int[], %(checkpoint_instants)s::timestamptz[]) AS k(cohort, as_of)
),
first_paid AS (
    SELECT customer_id, min(started_at) AS first_paid_at
    FROM subscriptions
    WHERE amount_cents > 0
    GROUP BY customer_id
),
member AS (
    SELECT c.cohort, f.customer_id
    FROM first_paid AS f
    JOIN cohort AS c ON f.first_paid_at >= c.starts_at AND f.first_paid_at < c.ends_at
),
size AS (
    SELECT cohort, count(*) AS customers FROM member GROUP BY cohort
),
member_mrr AS (
    SELECT k.cohort,
           k.as_of,
           m.customer_id,
           sum(s.amount_cents::numeric
               * CASE s.billing_interval WHEN 'month' THEN 12 WHEN 'year' THEN 1 END) AS mrr,
           bool_or(s.billing_interval IS NULL OR s.billing_interval NOT IN ('month', 'year'))
               AS unknown_interval
    FROM member AS m
    JOIN checkpoint AS k ON k.cohort = m.cohort
    JOIN subscriptions AS s
      ON s.customer_id = m.customer_id
     AND s.amount_cents > 0
     AND s.started_at < k.as_of
     AND (s.ended_at IS NULL OR s.ended_at >= k.as_of)
    GROUP BY k.cohort, k.as_of, m.customer_id
),
per_checkpoint AS (
    SELECT k.cohort,
           k.as_of,
           count(mm.customer_id) AS active,
           coalesce(sum(mm.mrr), 0) AS mrr,
           coalesce(bool_or(mm.unknown_interval), false) AS unknown_interval
    FROM checkpoint AS k
    LEFT JOIN member_mrr AS mm ON mm.cohort = k.cohort AND mm.as_of = k.as_of
    GROUP BY k.cohort, k.as_of
)
SELECT p.cohort,
       p.as_of,
       coalesce(z.customers, 0) AS customers,
       p.active,
       CASE WHEN p.mrr <= 9223372036854775807 THEN p.mrr::bigint END AS mrr_twelfths,
       p.unknown_interval
FROM per_checkpoint AS p
LEFT JOIN size AS z ON z.cohort = p.cohort
ORDER BY p.cohort, p.as_of;
