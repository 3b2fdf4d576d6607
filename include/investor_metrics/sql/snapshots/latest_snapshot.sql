-- The freshest snapshot of either series (metrics_snapshot.json): greatest period end; on a tie the
-- weekly one.
SELECT snapshot
FROM investor_metrics.snapshots
ORDER BY period_end DESC, (series = 'weekly') DESC
LIMIT 1;
