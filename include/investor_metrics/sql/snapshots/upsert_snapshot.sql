-- One snapshot per (series, period end): a rerun of the period replaces it (never a second row); an
-- on-demand report (series on_demand) never touches the weekly row of the same period end.
INSERT INTO investor_metrics.snapshots
    (series, period_end, period_start, period_type, snapshot, generated_at, run_id, updated_at)
VALUES
    (%(series)s, %(period_end)s, %(period_start)s, %(period_type)s, %(snapshot)s::json, %(generated_at)s,
     %(run_id)s, now())
ON CONFLICT (series, period_end) DO UPDATE SET
    period_start = EXCLUDED.period_start,
    period_type  = EXCLUDED.period_type,
    snapshot     = EXCLUDED.snapshot,
    generated_at = EXCLUDED.generated_at,
    run_id       = EXCLUDED.run_id,
    updated_at   = now();
