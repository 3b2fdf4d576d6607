-- Incident handling of one service runs one at a time (until the transaction ends): two runs never
-- both open an incident for the same failure streak.
SELECT pg_advisory_xact_lock(hashtext('investor_metrics.probe_incident|' || %(service)s::text))
