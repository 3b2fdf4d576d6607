-- Validation asset: per service, how many of the period's 5-minute probe rounds have a check.
-- Services: the configured ones (:services, may be NULL) or else those with checks in the period;
-- a configured service without any check gets 0 rounds. A round is a 5-minute slot of the epoch
-- clock, so a retried probe inside one slot is counted once. :expected_rounds = period / 5 min.
SELECT s.service,
       count(DISTINCT floor(extract(epoch FROM h.checked_at) / :probe_seconds)) AS probe_rounds,
       :expected_rounds AS expected_rounds,
       round(100.0 * count(DISTINCT floor(extract(epoch FROM h.checked_at) / :probe_seconds))
             / :expected_rounds, 2) AS coverage_pct
FROM unnest(coalesce(
         :services,
         ARRAY(SELECT DISTINCT service
               FROM investor_metrics.service_health_checks
               WHERE checked_at >= :start AND checked_at < :end))) AS s(service)
LEFT JOIN investor_metrics.service_health_checks AS h
       ON h.service = s.service
      AND h.checked_at >= :start
      AND h.checked_at < :end
GROUP BY s.service
