"""What a task body reads from its Airflow context beyond the period: the link to its DAG run in the
Airflow UI. Shared by the weekly tasks (``include.investor_metrics.weekly.tasks``) and the probe
tasks (``include.investor_metrics.health.tasks``)."""

from __future__ import annotations

import os


def airflow_run_url(context) -> str | None:
    """The UI address of the context's DAG run (``AIRFLOW__API__BASE_URL``/dags/<dag>/runs/<run>),
    or None when no base URL is configured."""
    base = os.getenv("AIRFLOW__API__BASE_URL", "").rstrip("/")
    if not base:
        return None
    from urllib.parse import quote

    dag_run = context["dag_run"]
    return f"{base}/dags/{dag_run.dag_id}/runs/{quote(dag_run.run_id, safe='')}"
