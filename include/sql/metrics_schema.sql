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
