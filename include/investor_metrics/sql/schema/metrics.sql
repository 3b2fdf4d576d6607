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

-- One row per reported period of a series (SPEC 2): "weekly" (scheduled and backfill weeks) or
-- "on_demand" (manual runs), keyed by (series, period_end): an on-demand report never replaces a week.
CREATE TABLE IF NOT EXISTS investor_metrics.snapshots (
    series       text        NOT NULL CHECK (series IN ('weekly', 'on_demand')),
    period_end   timestamptz NOT NULL,
    period_start timestamptz NOT NULL,
    period_type  text        NOT NULL,
    snapshot     json        NOT NULL,  -- json, not jsonb: keeps the key order of the file
    generated_at timestamptz NOT NULL,
    run_id       text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series, period_end)
);
-- Migration of a table keyed by period_end alone: its rows get their series from their type.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'investor_metrics'
                   AND table_name = 'snapshots' AND column_name = 'series') THEN
        ALTER TABLE investor_metrics.snapshots ADD COLUMN series text;
        UPDATE investor_metrics.snapshots
        SET series = CASE WHEN period_type = 'on_demand' THEN 'on_demand' ELSE 'weekly' END;
        ALTER TABLE investor_metrics.snapshots ALTER COLUMN series SET NOT NULL;
        ALTER TABLE investor_metrics.snapshots
            ADD CONSTRAINT snapshots_series_check CHECK (series IN ('weekly', 'on_demand'));
        ALTER TABLE investor_metrics.snapshots DROP CONSTRAINT snapshots_pkey;
        ALTER TABLE investor_metrics.snapshots ADD PRIMARY KEY (series, period_end);
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS snapshots_period_end_idx ON investor_metrics.snapshots (period_end DESC);

-- Alerts (SPEC section 6). One row per dedup_key: "<rule>|<period end>" for the weekly rules,
-- "<rule>|on_demand|<period end>" for an on-demand report's, "<rule>|<service>|<first failed probe>"
-- for a probe incident. A rerun UPSERTs, never duplicates; an e-mailed alert that a rerun no longer
-- raises is kept with superseded_at set (an un-e-mailed one is deleted).
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
    series       text        NOT NULL DEFAULT 'weekly' CHECK (series IN ('weekly', 'on_demand')),
    superseded_at timestamptz,                      -- e-mailed, then no longer raised by a rerun
    updated_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE investor_metrics.alerts ADD COLUMN IF NOT EXISTS series text NOT NULL DEFAULT 'weekly';
ALTER TABLE investor_metrics.alerts ADD COLUMN IF NOT EXISTS superseded_at timestamptz;
CREATE INDEX IF NOT EXISTS alerts_triggered_at_idx ON investor_metrics.alerts (triggered_at DESC);
CREATE INDEX IF NOT EXISTS alerts_period_end_idx ON investor_metrics.alerts (period_end);

-- Exactly-once e-mail (SPEC section 8), one row per (message kind, send key, recipient): each
-- recipient gets a message of their own. Status: pending (nothing tried yet), sending (leased by
-- lease_owner until lease_expires_at, claimed and committed before any SMTP), sent, deferred (a 4xx
-- refusal or no SMTP conversation: owed), unknown (the connection dropped or timed out after the
-- data went out: owed, resent with the same Message-ID), refused (5xx: permanent, reported to the
-- data team). An expired 'sending' lease means the holder vanished: its outcome is unknown.
CREATE TABLE IF NOT EXISTS investor_metrics.send_log (
    kind             text        NOT NULL,   -- weekly_summary, alert, incident_resolved, data_quality_failure, delivery_report
    send_key         text        NOT NULL,   -- the period end (ISO), on_demand|<period end>, the alert id, ...
    recipient        text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending',
    period_end       timestamptz,            -- the reported period, for the owed-e-mail sweep
    subject          text,
    message_id       text,
    run_id           text,
    sent_at          timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    smtp_code        integer,
    last_error       text,
    unknown_outcomes integer     NOT NULL DEFAULT 0,   -- attempts whose outcome was unknown
    unknown_reported integer     NOT NULL DEFAULT 0,   -- of those, how many the data team was told of
    refusal_reported boolean     NOT NULL DEFAULT false,
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT send_log_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'deferred', 'unknown', 'refused')),
    PRIMARY KEY (kind, send_key, recipient)
);

-- Migration of the per-message send log (primary key (kind, send_key), a recipients array): each
-- 'sent' row becomes one row per recipient it listed; a 'pending' row (nothing sent) is dropped.
-- Guarded by the catalog, so an up-to-date table takes no lock here.
DO $migrate$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'investor_metrics' AND table_name = 'send_log' AND column_name = 'recipient'
    ) THEN
        ALTER TABLE investor_metrics.send_log
            DROP CONSTRAINT IF EXISTS send_log_pkey,
            DROP CONSTRAINT IF EXISTS send_log_status_check,
            ADD COLUMN recipient text,
            ADD COLUMN period_end timestamptz,
            ADD COLUMN attempts integer NOT NULL DEFAULT 0,
            ADD COLUMN smtp_code integer,
            ADD COLUMN last_error text,
            ADD COLUMN unknown_outcomes integer NOT NULL DEFAULT 0,
            ADD COLUMN unknown_reported integer NOT NULL DEFAULT 0,
            ADD COLUMN refusal_reported boolean NOT NULL DEFAULT false,
            ADD COLUMN lease_owner text,
            ADD COLUMN lease_expires_at timestamptz,
            ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
            ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
        INSERT INTO investor_metrics.send_log (kind, send_key, recipient, status, subject, message_id, run_id,
                                               sent_at, attempts)
        SELECT DISTINCT ON (legacy.kind, legacy.send_key, address)
               legacy.kind, legacy.send_key, address, 'sent', legacy.subject, legacy.message_id,
               legacy.run_id, legacy.sent_at, 1
        FROM investor_metrics.send_log AS legacy, unnest(legacy.recipients) AS address
        WHERE legacy.recipient IS NULL AND legacy.status = 'sent';
        DELETE FROM investor_metrics.send_log WHERE recipient IS NULL;
        ALTER TABLE investor_metrics.send_log
            DROP COLUMN recipients,
            ALTER COLUMN recipient SET NOT NULL,
            ADD CONSTRAINT send_log_status_check
                CHECK (status IN ('pending', 'sending', 'sent', 'deferred', 'unknown', 'refused')),
            ADD PRIMARY KEY (kind, send_key, recipient);
    END IF;
END
$migrate$;
CREATE INDEX IF NOT EXISTS send_log_owed_idx ON investor_metrics.send_log (kind, period_end)
    WHERE status <> 'sent';
