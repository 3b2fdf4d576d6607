-- The project's own tables, schema investor_metrics of the metrics database (SPEC section 3).
-- Idempotent: applied by include/store.py under an advisory lock before every use.
CREATE SCHEMA IF NOT EXISTS investor_metrics;

CREATE TABLE IF NOT EXISTS investor_metrics.service_health_checks (
    service     text        NOT NULL,
    checked_at  timestamptz NOT NULL,
    ok          boolean     NOT NULL,
    response_ms integer,
    status_code integer,
    error       text,
    PRIMARY KEY (service, checked_at)
);
CREATE INDEX IF NOT EXISTS service_health_checks_checked_at_idx
    ON investor_metrics.service_health_checks (checked_at);

-- One row per reported period (keyed by its end): the published snapshot, for the API and history.
CREATE TABLE IF NOT EXISTS investor_metrics.snapshots (
    period_end   timestamptz PRIMARY KEY,
    period_start timestamptz NOT NULL,
    period_type  text        NOT NULL,
    snapshot     json        NOT NULL,  -- json, not jsonb: keeps the key order of the file
    generated_at timestamptz NOT NULL,
    run_id       text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Alerts (SPEC section 6). One row per dedup_key: "<rule>|<period end>" for the weekly rules,
-- "<rule>|<service>|<first failed probe>" for a probe incident. A rerun UPSERTs, never duplicates.
CREATE TABLE IF NOT EXISTS investor_metrics.alerts (
    id           text        PRIMARY KEY,          -- stable: derived from dedup_key
    dedup_key    text        NOT NULL UNIQUE,
    rule         text        NOT NULL,
    severity     text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    category     text        NOT NULL,
    title        text        NOT NULL,
    message      text        NOT NULL,
    metric       text,
    value        double precision,
    threshold    double precision,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    triggered_at timestamptz NOT NULL,
    run_id       text,
    notified     boolean     NOT NULL DEFAULT false,
    service      text,                              -- probe incidents only
    resolved_at  timestamptz,                       -- probe incidents: when the service answered again
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_triggered_at_idx ON investor_metrics.alerts (triggered_at DESC);
CREATE INDEX IF NOT EXISTS alerts_period_end_idx ON investor_metrics.alerts (period_end);

-- Exactly-once e-mail (SPEC section 8): a message is sent only after its row is claimed (row lock
-- held across the SMTP conversation) and marked 'sent' in the same transaction.
CREATE TABLE IF NOT EXISTS investor_metrics.send_log (
    kind        text        NOT NULL,   -- weekly_summary, alert, incident_resolved, data_quality_failure
    send_key    text        NOT NULL,   -- the period end (ISO) or the alert id
    status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
    recipients  text[],
    subject     text,
    message_id  text,
    run_id      text,
    sent_at     timestamptz,
    PRIMARY KEY (kind, send_key)
);
