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
