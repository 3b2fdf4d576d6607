-- Snapshots of one series, newest first; every other filter is optional (null = no filter).
SELECT snapshot
FROM investor_metrics.snapshots
WHERE series = %(series)s::text
  AND (%(before)s::timestamptz IS NULL OR period_end < %(before)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR period_end <= %(until)s::timestamptz)
  AND (%(types)s::text[] IS NULL OR period_type = ANY(%(types)s::text[]))
ORDER BY period_end DESC
LIMIT %(limit)s;
