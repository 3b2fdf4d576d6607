-- The state of one service as of one probe round (checks at or before %(checked_at)s only, so a rerun
-- of an old round sees what that round saw): its latest check, and its current failure streak — the
-- failed checks after its last ok check, by checked_at. streak_alert_at is the check that made the
-- streak %(failures)s long (null while it is shorter), alert_error that check's error.
WITH recent AS (
    SELECT checked_at, ok, error
    FROM investor_metrics.service_health_checks
    WHERE service = %(service)s
      AND checked_at <= %(checked_at)s::timestamptz
),
last_ok AS (
    SELECT max(checked_at) AS checked_at FROM recent WHERE ok
),
streak AS (
    SELECT recent.checked_at, recent.error,
           row_number() OVER (ORDER BY recent.checked_at) AS position
    FROM recent, last_ok
    WHERE NOT recent.ok
      AND (last_ok.checked_at IS NULL OR recent.checked_at > last_ok.checked_at)
)
SELECT (SELECT max(checked_at) FROM recent)                                AS latest_at,
       (SELECT ok FROM recent ORDER BY checked_at DESC LIMIT 1)            AS latest_ok,
       (SELECT min(checked_at) FROM streak)                                AS streak_start,
       (SELECT count(*) FROM streak)                                       AS streak_length,
       (SELECT checked_at FROM streak WHERE position = %(failures)s::bigint) AS streak_alert_at,
       (SELECT error FROM streak WHERE position = %(failures)s::bigint)     AS alert_error
