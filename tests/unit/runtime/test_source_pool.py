"""The missing-pool check, on the test session's Airflow metadata database (SQLite); through a real
scheduler: tests/integration/test_scheduler_runs.py."""

from __future__ import annotations

import subprocess
import sys

from include.investor_metrics.runtime.source_pool import check_run_start, missing_pool_message


class _Run:
    def __init__(self, dag_id):
        self.dag_id, self.run_id, self.note = dag_id, "manual__x", None


def test_a_missing_pool_is_named_with_the_fix():
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    Pool.delete_pool("chatterfix_source") if Pool.get_pool("chatterfix_source") else None
    with create_session() as session:
        message = missing_pool_message(session)
        assert "The Airflow pool 'chatterfix_source' does not exist" in message
        assert 'airflow pools set chatterfix_source 4 "ChatterFix source database"' in message
        assert missing_pool_message(session, "default_pool") is None
    assert check_run_start(_Run("service_health_probe")) is None  # other DAGs: not checked
    assert check_run_start(_Run("investor_metrics")) is None  # not in a session: no check, no error
