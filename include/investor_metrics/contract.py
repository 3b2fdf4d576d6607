"""Names the SPEC fixes once, for every module that needs them: the alert severities and their
order (section 6), the health-check table and the probe interval (section 9)."""

from __future__ import annotations

from datetime import timedelta

SEVERITIES = ("critical", "high", "medium", "low")  # most severe first
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
URGENT_SEVERITIES = ("critical", "high")  # e-mailed at once, each on its own (section 8)

HEALTH_TABLE = "investor_metrics.service_health_checks"

PROBE_INTERVAL = timedelta(minutes=5)  # one probe round per service every 5 minutes
PROBE_INTERVAL_SECONDS = int(PROBE_INTERVAL.total_seconds())
PROBE_CRON = f"*/{PROBE_INTERVAL_SECONDS // 60} * * * *"  # the probe DAG's schedule, the same interval
