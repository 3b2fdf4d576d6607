-- ChatterFix application tables (SPEC section 3), as the demo and the tests create them.
--
-- Deliberately WITHOUT primary keys, foreign keys or CHECK constraints: the real application
-- database may not enforce its rules, so the pipeline checks them itself (validation step).
-- Keeping them out here is what lets the tests load bad rows and prove validation catches them.
-- The indexes are the ones the period queries need at scale (time ranges, per-customer lookups).
CREATE TABLE IF NOT EXISTS customers (
    customer_id bigint,
    name        text,
    plan        text,
    created_at  timestamptz
);
CREATE INDEX IF NOT EXISTS customers_customer_id_idx ON customers (customer_id);

CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id  bigint,
    customer_id      bigint,
    plan             text,
    billing_interval text,
    amount_cents     bigint,
    started_at       timestamptz,
    ended_at         timestamptz
);
CREATE INDEX IF NOT EXISTS subscriptions_customer_id_idx ON subscriptions (customer_id);
CREATE INDEX IF NOT EXISTS subscriptions_started_at_idx ON subscriptions (started_at);

CREATE TABLE IF NOT EXISTS leads (
    lead_id      bigint,
    source       text,
    created_at   timestamptz,
    converted_at timestamptz,
    customer_id  bigint
);
CREATE INDEX IF NOT EXISTS leads_created_at_idx ON leads (created_at);

CREATE TABLE IF NOT EXISTS nps_responses (
    response_id  bigint,
    customer_id  bigint,
    score        smallint,
    responded_at timestamptz
);
CREATE INDEX IF NOT EXISTS nps_responses_responded_at_idx ON nps_responses (responded_at);

CREATE TABLE IF NOT EXISTS usage_events (
    event_id    bigint,
    customer_id bigint,
    user_id     bigint,
    event_type  text,
    occurred_at timestamptz
);
CREATE INDEX IF NOT EXISTS usage_events_occurred_at_idx ON usage_events (occurred_at);

CREATE TABLE IF NOT EXISTS ai_requests (
    request_id   bigint,
    customer_id  bigint,
    provider     text,
    request_type text,
    requested_at timestamptz,
    latency_ms   integer,
    cache_hit    boolean,
    status       text,
    feedback     text
);
CREATE INDEX IF NOT EXISTS ai_requests_requested_at_idx ON ai_requests (requested_at);
