-- One alert per dedup_key (SPEC 6): "<rule>|<period end>" for the weekly rules ("<rule>|on_demand|
-- <period end>" for an on-demand report). A rerun updates the row in place (never a second row) and
-- makes it current again (superseded_at cleared); notified stays true once true, resolved_at is kept.
INSERT INTO investor_metrics.alerts
    (id, dedup_key, rule, severity, category, title, message, metric, value, threshold,
     period_start, period_end, triggered_at, run_id, notified, service, series, updated_at)
VALUES
    (%(id)s, %(dedup_key)s, %(rule)s, %(severity)s, %(category)s, %(title)s, %(message)s, %(metric)s,
     %(value)s::double precision, %(threshold)s::double precision,
     %(period_start)s::timestamptz, %(period_end)s::timestamptz, %(triggered_at)s::timestamptz,
     %(run_id)s, %(notified)s::boolean, %(service)s, %(series)s, now())
ON CONFLICT (dedup_key) DO UPDATE SET
    rule         = EXCLUDED.rule,
    severity     = EXCLUDED.severity,
    category     = EXCLUDED.category,
    title        = EXCLUDED.title,
    message      = EXCLUDED.message,
    metric       = EXCLUDED.metric,
    value        = EXCLUDED.value,
    threshold    = EXCLUDED.threshold,
    period_start = EXCLUDED.period_start,
    period_end   = EXCLUDED.period_end,
    triggered_at = EXCLUDED.triggered_at,
    run_id       = EXCLUDED.run_id,
    notified     = investor_metrics.alerts.notified OR EXCLUDED.notified,
    service      = EXCLUDED.service,
    series       = EXCLUDED.series,
    superseded_at = NULL,
    updated_at   = now()
RETURNING id, rule, severity, category, title, message, metric, value, threshold,
          period_start, period_end, triggered_at, run_id, notified, service, resolved_at, series, superseded_at;
