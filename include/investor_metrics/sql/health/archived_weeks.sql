-- The late-report check (health/late_report.py): is the week ending %(period_end)s archived in the
-- weekly series (scheduled or backfill runs), the newest weekly period end before it (none: the
-- pipeline has never archived a week before it), and the newest weekly period end of all.
-- Aggregates over the primary key (series, period_end): no snapshot is read.
SELECT COALESCE(bool_or(period_end = %(period_end)s), false)      AS archived,
       max(period_end) FILTER (WHERE period_end < %(period_end)s) AS previous,
       max(period_end)                                            AS latest
FROM investor_metrics.snapshots
WHERE series = 'weekly'
