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

# The Airflow Asset every published snapshot updates (SPEC 13): archive_snapshot emits it with
# Metadata {"period_end", "period_type", "mrr"}; investor_metrics_slack is scheduled on it.
SNAPSHOT_ASSET_NAME = "investor_metrics_snapshot"
SNAPSHOT_ASSET_URI = "investor-metrics://snapshot"
SLACK_DAG_ID = "investor_metrics_slack"
SLACK_CONN_ID = "slack_investor_updates"
SOURCE_POOL = "chatterfix_source"  # caps concurrent queries on the ChatterFix database (SPEC 13)
