"""The retry rules in real task runs: ``dag.test()`` of the weekly DAG's tasks (Airflow's metadata
in the test AIRFLOW_HOME's SQLite), the real PostgreSQL behind a loopback proxy that can drop
connections. A lost or refused connection is retried (and the retry succeeds once the server is
back); bad data fails on its first try although retries remain. (A malformed setting failing at
once, with the DAG's own retries: ``test_weekly_dag.py``, the storage-URL test.)"""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest

from tests.conftest import PROJECT_ROOT, free_port
from tests.dags.test_weekly_dag import (  # noqa: F401 - fixtures
    BAD_DATA,
    PERIOD_END,
    airflow_db,
    bad_rows,
    dag_env,
    source_db,
)

AI_EXTRACT = "extract.extract_ai_metrics"


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 to the PostgreSQL server: the first ``drop`` connections are closed
    as soon as they are accepted (what a client sees when its backend is terminated or the server
    restarts: psycopg2 ``OperationalError: server closed the connection unexpectedly``), the
    others are forwarded both ways."""

    def __init__(self, upstream: tuple[str, int], drop: int):
        self.upstream, self.drop, self.dropped, self.forwarded = upstream, drop, 0, 0
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.dropped < self.drop:
                self.dropped += 1
                client.close()
                continue
            self.forwarded += 1
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


def run_tasks(task_ids, *, retries: int, include_upstream: bool = False):
    """``dag.test()`` of ``task_ids`` of the weekly DAG (with their upstream tasks when asked),
    each with ``retries`` and no retry delay; {task id: (state, try number)}."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py")).dags["investor_metrics"]
    dag = dag.partial_subset(task_ids=list(task_ids), include_upstream=include_upstream)
    for task in dag.tasks:
        task.retries = retries
        task.retry_delay = timedelta(0)
        task.retry_exponential_backoff = False
    dr = dag.test(run_conf={"period_end": PERIOD_END, "send_email": False}, logical_date=None)
    return {ti.task_id: (str(getattr(ti.state, "value", ti.state)), ti.try_number)
            for ti in dr.get_task_instances()}


@pytest.fixture()
def proxy(source_db, monkeypatch):  # noqa: F811 - the fixture
    proxies = []

    def start(drop: int) -> DroppingProxy:
        p = DroppingProxy((source_db.host, source_db.port), drop)
        proxies.append(p)
        monkeypatch.setenv("DB_HOST", "127.0.0.1")
        monkeypatch.setenv("DB_PORT", str(p.port))
        return p

    yield start
    for p in proxies:
        p.close()


def test_a_connection_the_server_drops_is_retried_and_the_retry_succeeds(dag_env, proxy):  # noqa: F811
    dropping = proxy(drop=1)  # the first try's first connection (the schema check) is cut
    states = run_tasks([AI_EXTRACT], retries=2)
    assert states[AI_EXTRACT] == ("success", 2), states
    assert dropping.dropped == 1 and dropping.forwarded >= 2  # the retry's schema check and extract


def test_a_refused_port_is_retried_until_the_tries_run_out(dag_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(free_port()))  # nothing listens there
    states = run_tasks([AI_EXTRACT], retries=1)
    assert states[AI_EXTRACT] == ("failed", 2), states


def test_bad_data_fails_on_its_first_try_although_retries_remain(dag_env, bad_rows):  # noqa: F811
    _table, _column, sql = BAD_DATA["subscriptions.amount_cents near the bigint maximum"]
    bad_rows(sql)
    states = run_tasks(["validate_data"], retries=2, include_upstream=True)
    assert states["validate_data"] == ("failed", 1), states
    assert {states[t] for t in states if t != "validate_data"} == {("success", 1)}, states
