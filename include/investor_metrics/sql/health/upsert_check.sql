-- One probe of one service in one round (SPEC sections 3, 9). The round time is the key: a retry or
-- a rerun of the round replaces its row, never adds a second one.
INSERT INTO investor_metrics.service_health_checks
    (service, checked_at, ok, response_ms, status_code, error)
VALUES
    (%(service)s, %(checked_at)s::timestamptz, %(ok)s::boolean, %(response_ms)s::integer,
     %(status_code)s::integer, %(error)s::text)
ON CONFLICT (service, checked_at) DO UPDATE SET
    ok          = EXCLUDED.ok,
    response_ms = EXCLUDED.response_ms,
    status_code = EXCLUDED.status_code,
    error       = EXCLUDED.error
