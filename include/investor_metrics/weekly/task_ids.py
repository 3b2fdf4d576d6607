"""The task ids of the ``investor_metrics`` DAG that code outside the DAG file names (XCom pulls,
messages, the demo stack, the benchmarks), with its two task groups, and which tasks query the
ChatterFix source database (they run in the pool ``contract.SOURCE_POOL``, SPEC 13)."""

from __future__ import annotations

EXTRACT_GROUP = "extract"
EMAIL_GROUP = "email"

EXTRACT_BUSINESS = f"{EXTRACT_GROUP}.extract_business_data"
EXTRACT_AI = f"{EXTRACT_GROUP}.extract_ai_metrics"
EXTRACT_HEALTH = f"{EXTRACT_GROUP}.extract_health_checks"
EXTRACT_TASKS = (EXTRACT_BUSINESS, EXTRACT_AI, EXTRACT_HEALTH)
VALIDATE = "validate_data"
COMPUTE = "compute_metrics"
EVALUATE = "evaluate_alerts"
ARCHIVE = "archive_snapshot"
SEND_ALERTS = f"{EMAIL_GROUP}.send_alert_notifications"
SEND_SUMMARY = f"{EMAIL_GROUP}.send_weekly_summary"
EMAIL_TASKS = (SEND_ALERTS, SEND_SUMMARY)

# extract_health_checks reads the metrics store only; evaluate_alerts reads the source's churn history
SOURCE_TASKS = (EXTRACT_BUSINESS, EXTRACT_AI, VALIDATE, EVALUATE)
