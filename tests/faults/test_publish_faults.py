"""Publication under faults (SPEC 2, 6, 7; issue 13 points 4, 7, 9, 14): the task bodies of
``include/investor_metrics/weekly/tasks.py`` (evaluate_alerts, archive_snapshot) driven with a hand-made
context against a real PostgreSQL, faults injected for real — a backend terminated with
``pg_terminate_backend``, a process killed with SIGKILL while it waits on the real publish lock, runs
cleared and rerun, two runs of one period interleaved. Each test asserts the end state: the archive
files equal the store's committed rows, no alert lost, the latest pointer right.

Run as a script (``python tests/faults/test_publish_faults.py archive <json>``) it is the worker
process of the SIGKILL test: one ``archive_snapshot`` call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import pytest  # noqa: E402

from include.investor_metrics import storage  # noqa: E402
from include.investor_metrics.db import apply_metrics_schema, connect  # noqa: E402
from include.investor_metrics.period import iso_utc, weekly_period  # noqa: E402
from include.investor_metrics.weekly import archive, staging  # noqa: E402
from include.investor_metrics.weekly import snapshots as store  # noqa: E402
from include.investor_metrics.weekly import tasks as pipeline  # noqa: E402
from include.investor_metrics.weekly.alerts import store as alert_store  # noqa: E402
from tests.conftest import fetch_all as query  # noqa: E402
from tests.object_store import Files  # noqa: E402

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
DAG_ID = "investor_metrics"
WAIT = 15  # seconds: the longest a test waits for a process to reach its blocking point


# --------------------------------------------------------------------------- a run's context
class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def make_context(run_id: str, run_type: str = "scheduled", end: datetime = END) -> dict:
    """What the pipeline functions read from the Airflow context (as dev/bench/weekly.py's stand-in)."""
    manual = run_type == "manual"
    dag_run = _Obj(run_type=run_type, run_id=run_id, dag_id=DAG_ID,
                   data_interval_end=None if manual else end, run_after=end, logical_date=None)
    params = {"period_end": iso_utc(end), "send_email": False} if manual else {}
    return {"dag_run": dag_run, "params": params, "run_id": run_id,
            "ti": _Obj(xcom_push=lambda *a, **k: None), "outlet_events": OutletEvents(),
            "task": _Obj(task_id="archive_snapshot", get_flat_relative_ids=lambda upstream=False: set())}


class OutletEvents(dict):
    """Airflow's ``outlet_events`` accessor: the event of an asset, made on first access."""

    def __missing__(self, asset):
        self[asset] = _Obj(extra={})
        return self[asset]


def asset_extra(ctx) -> dict:
    from include.investor_metrics.assets import SNAPSHOT_ASSET

    return ctx["outlet_events"][SNAPSHOT_ASSET].extra


def computed_snapshot(end: datetime = END, period_type: str = "weekly", **values) -> dict:
    """compute_metrics' output for the week ending ``end`` (``section__key=value`` overrides)."""
    snap = {
        "timestamp": iso_utc(end),
        "generated_at": iso_utc(end),
        "period": weekly_period(end, "UTC", period_type).as_dict(),
        "system_health": {"uptime_percentage": 99.7, "status": "healthy", "services_total": 2,
                          "services_healthy": 2, "avg_response_time_ms": 150.0, "error_rate": 0.3,
                          "services": {"api": {"uptime_percentage": 99.7, "healthy": True},
                                       "web": {"uptime_percentage": 99.7, "healthy": True}}},
        "ai_platform": {"total_requests": 100, "accuracy_rate": 95.0, "providers": {}},
        "financial": {"mrr": 42500.0, "mrr_growth_rate": 8.0, "active_customers": 100},
        "business_health": {"churned_customers": 1},
        "data_quality": {"success": True, "warnings": []},
        "alerts": [],
    }
    for path, value in values.items():
        section, key = path.split("__")
        snap[section][key] = value
    return snap


BAD = {"system_health__uptime_percentage": 98.0, "ai_platform__accuracy_rate": 80.0}  # two alerts
OTHER_BAD = {"financial__mrr_growth_rate": 1.0}  # one other alert


def stage(context: dict, snapshot: dict) -> str:
    """Put ``snapshot`` where compute_metrics leaves it; returns its path."""
    return staging.write_json_atomic(storage.join(staging.run_staging_dir(context), "snapshot.json"),
                                     snapshot)


def evaluated(context: dict, snapshot: dict) -> str:
    """compute_metrics' output staged, then evaluate_alerts run on it: archive_snapshot's input."""
    return pipeline.evaluate_alerts(context, stage(context, snapshot))


# --------------------------------------------------------------------------- the environment
@pytest.fixture(params=["local", "s3"])
def env(request, fresh_database, tmp_path, monkeypatch):
    """The store in a fresh database; archive and staging in local folders, or on the loopback S3
    server (tests/object_store.py) reached through the ``aws_default`` connection."""
    for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "INVESTOR_ALERT_"))]:
        monkeypatch.delenv(key)
    server = None
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")  # sets AIRFLOW_CONN_AWS_DEFAULT
        archive_dir, staging_dir = f"s3://{bucket}/investors", f"s3://{bucket}/staging"
    else:
        archive_dir, staging_dir = str(tmp_path / "archive"), str(tmp_path / "staging")
    settings = {"DB_HOST": fresh_database.host, "DB_PORT": str(fresh_database.port),
                "DB_NAME": fresh_database.dbname, "DB_USER": fresh_database.user or "",
                "INVESTOR_ARCHIVE_DIR": archive_dir, "INVESTOR_STAGING_DIR": staging_dir,
                "INVESTOR_TIMEZONE": "UTC"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    conn = connect(fresh_database)
    try:
        apply_metrics_schema(conn)
        # The 9 weeks before END are stored: the churn baseline of END and of the week before it
        # reads them (never the source, which this database does not hold).
        for k in range(1, 10):
            end = END - timedelta(days=7 * k)
            snap = computed_snapshot(end, "backfill")
            period = weekly_period(end, "UTC", "backfill")
            with conn.cursor() as cur:
                store.upsert_snapshot(cur, snap, period_start=period.start, period_end=period.end,
                                      run_id=f"backfill__{k}")
            conn.commit()
    finally:
        conn.close()
    return type("Env", (), {"db": fresh_database, "archive": Files(archive_dir, server),
                            "staging": Files(staging_dir, server), "staging_dir": staging_dir})


def assert_files_equal_store(env) -> None:
    """Every period file equals its committed row, metrics_snapshot.json the newest committed
    snapshot, alert_history.json every stored alert."""
    conn = connect(env.db)
    try:
        for name, body in env.archive.files().items():
            if not name.rsplit("/", 1)[-1].startswith("metrics_2"):
                continue
            series = "on_demand" if name.startswith("on_demand/") else "weekly"
            stamp = name.rsplit("/", 1)[-1].removeprefix("metrics_").removesuffix(".json")
            end = datetime.strptime(stamp, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=timezone.utc)
            assert json.loads(body) == store.snapshot_for(conn, end, series=series), name
        assert env.archive.read(archive.LATEST_NAME) == store.latest_snapshot(conn)
        assert env.archive.read(archive.ALERT_HISTORY_NAME)["alerts"] == alert_store.all_alerts(conn)
    finally:
        conn.close()


def current_alerts(env, end=END, series="weekly") -> list[dict]:
    conn = connect(env.db)
    try:
        return alert_store.alerts_for_period(conn, end, series=series)
    finally:
        conn.close()


def stored(env, end=END, series="weekly") -> dict | None:
    conn = connect(env.db)
    try:
        return store.snapshot_for(conn, end, series=series)
    finally:
        conn.close()


def assert_alerts_are_the_snapshots(env, end=END, series="weekly") -> None:
    """The period's current alerts are exactly those of its stored (and published) snapshot."""
    snap = stored(env, end, series)
    assert sorted(a["id"] for a in current_alerts(env, end, series)) == sorted(
        a["id"] for a in snap["alerts"])


class PublishLockHolder:
    """A connection of the test holding the real publish advisory lock (session level)."""

    def __init__(self, settings):
        self.conn = connect(settings)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            self.pid = cur.fetchone()[0]
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (store.PUBLISH_LOCK,))
        self.dbname = settings.dbname

    def waiters(self) -> list[int]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s ORDER BY l.pid",
                        (self.dbname,))
            return [row[0] for row in cur.fetchall()]

    def wait_for_waiters(self, n: int) -> list[int]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = self.waiters()
            if len(found) >= n:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{n} run(s) never reached the publish lock (waiting: {self.waiters()})")

    def terminate(self, pid: int) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert cur.fetchone()[0]

    def release(self) -> None:
        if not self.conn.closed:
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (store.PUBLISH_LOCK,))
            self.conn.close()


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            outcome.append(target(*args))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def publish_week(env, end: datetime, run_id: str, **values) -> dict:
    ctx = make_context(run_id, end=end)
    return pipeline.archive_snapshot(ctx, evaluated(ctx, computed_snapshot(end, **values)))


# --------------------------------------------------------------------------- (a) backend terminated
def test_a_backend_terminated_before_the_file_write_never_leaves_a_file_the_store_lacks(env):
    """The run's backend is terminated while it waits to publish (after its store write, before
    its file write): the files may lag the store, never lead it; the retry repairs them."""
    previous = END - timedelta(days=7)
    publish_week(env, previous, "scheduled__prev")
    before = env.archive.files()
    ctx = make_context("scheduled__now")
    staged = evaluated(ctx, computed_snapshot(**BAD))

    holder = PublishLockHolder(env.db)
    try:
        thread, outcome = in_thread(pipeline.archive_snapshot, ctx, staged)
        (pid,) = holder.wait_for_waiters(1)
        holder.terminate(pid)
        thread.join(WAIT)
        assert isinstance(outcome[0], Exception), outcome
    finally:
        holder.release()
    # What is on disk now is either what was there before or what the store has committed.
    latest_file = env.archive.read(archive.LATEST_NAME)
    assert latest_file in (json.loads(before[archive.LATEST_NAME]), store_latest(env))
    period_file = env.archive.read(archive.period_file_name(END))
    assert period_file is None or period_file == stored(env)

    pipeline.archive_snapshot(ctx, staged)  # the retry
    assert_files_equal_store(env)
    assert env.archive.read(archive.LATEST_NAME)["period"]["end"] == iso_utc(END)
    assert_alerts_are_the_snapshots(env)


def store_latest(env):
    conn = connect(env.db)
    try:
        return store.latest_snapshot(conn)
    finally:
        conn.close()


def test_a_backend_terminated_as_the_latest_file_is_written_leaves_the_committed_snapshot(env, monkeypatch):
    """The run's backend is terminated at the moment metrics_snapshot.json is written: the file
    then holds what the store committed (never a snapshot the store rolled back)."""
    previous = END - timedelta(days=7)
    publish_week(env, previous, "scheduled__prev")
    ctx = make_context("scheduled__now")
    staged = evaluated(ctx, computed_snapshot(**BAD))
    killer = connect(env.db)
    killer.autocommit = True
    write_latest = archive.write_latest

    def terminate_then_write(location, snapshot):
        with killer.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return write_latest(location, snapshot)

    monkeypatch.setattr(archive, "write_latest", terminate_then_write)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the lost connection, whatever its class
            pipeline.archive_snapshot(ctx, staged)
    finally:
        killer.close()
    latest_file = env.archive.read(archive.LATEST_NAME)
    assert latest_file == store_latest(env)  # never a snapshot the store does not hold
    monkeypatch.setattr(archive, "write_latest", write_latest)
    pipeline.archive_snapshot(ctx, staged)
    assert_files_equal_store(env)
    assert env.archive.read(archive.LATEST_NAME)["period"]["end"] == iso_utc(END)


# --------------------------------------------------------------------------- (b) kill -9 mid-archive
def test_kill_9_mid_archive_then_retry(env):
    """A worker process is SIGKILLed while it waits on the real publish lock (after the store
    write): no file leads the store; the retry makes the files equal the store."""
    previous = END - timedelta(days=7)
    publish_week(env, previous, "scheduled__prev")
    before = env.archive.files()
    ctx = make_context("scheduled__now")
    staged = evaluated(ctx, computed_snapshot(**BAD))

    holder = PublishLockHolder(env.db)
    try:
        worker = subprocess.Popen(
            [sys.executable, __file__, "archive", json.dumps({"run_id": "scheduled__now", "path": staged})],
            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            holder.wait_for_waiters(1)
        except AssertionError:
            worker.kill()
            raise AssertionError(worker.communicate()[0].decode()[-3000:]) from None
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(WAIT) == -signal.SIGKILL
    finally:
        holder.release()
    after = env.archive.files()
    assert after[archive.LATEST_NAME] == before[archive.LATEST_NAME]  # lags: nothing published yet
    period_file = env.archive.read(archive.period_file_name(END))
    assert period_file is None or period_file == stored(env)

    pipeline.archive_snapshot(ctx, staged)  # the retry
    assert_files_equal_store(env)
    assert env.archive.read(archive.LATEST_NAME)["period"]["end"] == iso_utc(END)
    assert_alerts_are_the_snapshots(env)
    assert {a["rule"] for a in current_alerts(env)} == {"uptime_below_target", "ai_accuracy_below_target"}


# --------------------------------------------------------------------------- (c) cleared after success
def test_cleared_and_rerun_after_success_then_republished_from_the_store(env):
    ctx = make_context("scheduled__now")
    compute_output = stage(ctx, computed_snapshot(**BAD))
    own_input = compute_output.removeprefix(env.staging_dir).strip("/")
    compute_bytes = env.staging.read_bytes(own_input)
    assert compute_bytes is not None
    staged = pipeline.evaluate_alerts(ctx, compute_output)
    pipeline.archive_snapshot(ctx, staged)
    files = env.archive.files()
    rows_sql = ("SELECT series, period_end, period_type, snapshot::text, generated_at, run_id "
                "FROM investor_metrics.snapshots ORDER BY series, period_end")
    alerts_sql = ("SELECT id, dedup_key, rule, run_id, notified, superseded_at "
                  "FROM investor_metrics.alerts ORDER BY id")
    rows, alert_rows = query(env.db, rows_sql), query(env.db, alerts_sql)
    assert len(alert_rows) == 2

    for _ in range(2):  # evaluate_alerts and archive_snapshot cleared and rerun, twice
        assert pipeline.evaluate_alerts(ctx, compute_output) == staged
        assert env.staging.read_bytes(own_input) == compute_bytes  # its own input left as it was
        pipeline.archive_snapshot(ctx, staged)
        assert env.archive.files() == files
        assert query(env.db, rows_sql) == rows
        assert query(env.db, alerts_sql) == alert_rows  # no duplicate alert
    assert_files_equal_store(env)

    # The run's staging is gone (cleaned up, another worker): archive republishes from the store,
    # and the Asset event says so again, from the stored snapshot
    env.staging.remove(staging.run_staging_dir(ctx).removeprefix(env.staging_dir).strip("/"))
    for name in files:
        env.archive.remove(name)
    ctx["outlet_events"].clear()
    pipeline.archive_snapshot(ctx, staged)
    assert asset_extra(ctx) == {"period_end": iso_utc(END), "period_type": "weekly", "mrr": 42500.0,
                                "series": "weekly", "announce": True}
    assert env.archive.files() == files
    assert query(env.db, rows_sql) == rows
    assert_files_equal_store(env)

    # Another run of the period whose staging is gone has nothing to publish: a clear error.
    with pytest.raises(FileNotFoundError, match="extract_business_data"):
        pipeline.archive_snapshot(make_context("manual__other", "manual"), staged)


# --------------------------------------------------------------------------- (d) two runs interleaved
def test_two_runs_of_one_period_interleaved_lose_no_alert(env):
    """evaluate A, evaluate B, archive B, archive A: the period's alerts are A's (the snapshot
    published last), never B's left over, and the files equal the store."""
    run_a, run_b = make_context("scheduled__a"), make_context("scheduled__b")
    staged_a = evaluated(run_a, computed_snapshot(**BAD))
    staged_b = evaluated(run_b, computed_snapshot(**OTHER_BAD))
    pipeline.archive_snapshot(run_b, staged_b)
    pipeline.archive_snapshot(run_a, staged_a)
    assert stored(env)["system_health"]["uptime_percentage"] == 98.0
    assert {a["rule"] for a in current_alerts(env)} == {"uptime_below_target", "ai_accuracy_below_target"}
    assert_alerts_are_the_snapshots(env)
    assert_files_equal_store(env)


def test_two_runs_of_one_period_racing_to_publish(env):
    """Both runs store their period and wait on the publish lock together; released, both publish.
    The last committed run wins everywhere: row, alerts, period file, latest."""
    run_a, run_b = make_context("scheduled__a"), make_context("scheduled__b")
    staged_a = evaluated(run_a, computed_snapshot(**BAD))
    staged_b = evaluated(run_b, computed_snapshot(**OTHER_BAD))
    holder = PublishLockHolder(env.db)
    try:
        thread_a, outcome_a = in_thread(pipeline.archive_snapshot, run_a, staged_a)
        holder.wait_for_waiters(1)
        thread_b, outcome_b = in_thread(pipeline.archive_snapshot, run_b, staged_b)
        holder.wait_for_waiters(2)
    finally:
        holder.release()
    thread_a.join(WAIT)
    thread_b.join(WAIT)
    assert all(isinstance(o[0], dict) for o in (outcome_a, outcome_b)), (outcome_a, outcome_b)
    assert stored(env)["financial"]["mrr_growth_rate"] == 1.0  # B committed last
    assert {a["rule"] for a in current_alerts(env)} == {"mrr_growth_below_target"}
    assert_alerts_are_the_snapshots(env)
    assert_files_equal_store(env)


# --------------------------------------------------------------------------- (e) e-mailed, then gone
def test_a_rerun_that_no_longer_raises_an_emailed_alert_keeps_it_superseded(env):
    ctx = make_context("scheduled__now")
    pipeline.archive_snapshot(ctx, evaluated(ctx, computed_snapshot(**BAD, **OTHER_BAD)))
    by_rule = {a["rule"]: a for a in current_alerts(env)}
    assert set(by_rule) == {"uptime_below_target", "ai_accuracy_below_target", "mrr_growth_below_target"}
    conn = connect(env.db)
    try:
        alert_store.mark_notified(conn, [by_rule["uptime_below_target"]["id"]])  # e-mailed, flag set
        with conn.cursor() as cur:  # e-mailed, the send log says so (the flag not yet set)
            cur.execute("INSERT INTO investor_metrics.send_log (kind, send_key, recipient, status) "
                        "VALUES ('alert', %s, 'ann@investors.example', 'sent')",
                        (by_rule["ai_accuracy_below_target"]["id"],))
        conn.commit()
    finally:
        conn.close()

    # The period is rerun after a source fix: nothing fires any more.
    rerun = make_context("scheduled__rerun")
    pipeline.archive_snapshot(rerun, evaluated(rerun, computed_snapshot()))
    assert current_alerts(env) == []  # superseded alerts are not the period's current alerts
    conn = connect(env.db)
    try:
        kept = {a["rule"]: a for a in alert_store.all_alerts(conn)}
    finally:
        conn.close()
    assert set(kept) == {"uptime_below_target", "ai_accuracy_below_target"}  # the un-e-mailed one deleted
    assert all(a["superseded_at"] for a in kept.values())
    assert kept["uptime_below_target"]["notified"] is True
    history = env.archive.read(archive.ALERT_HISTORY_NAME)["alerts"]
    assert {a["rule"]: bool(a.get("superseded_at")) for a in history} == {
        "uptime_below_target": True, "ai_accuracy_below_target": True}
    assert_files_equal_store(env)

    # Raised again by a later rerun: current again, the same alert (id, notified kept).
    again = make_context("scheduled__again")
    pipeline.archive_snapshot(again, evaluated(again, computed_snapshot(**BAD)))
    back = {a["rule"]: a for a in current_alerts(env)}
    assert back["uptime_below_target"]["id"] == by_rule["uptime_below_target"]["id"]
    assert (back["uptime_below_target"]["notified"] is True
            and "superseded_at" not in back["uptime_below_target"])
    assert_alerts_are_the_snapshots(env)


# --------------------------------------------------------------------------- (f) on-demand vs weekly
def test_an_on_demand_run_at_a_weeks_end_leaves_the_week_alone(env):
    weekly = make_context("scheduled__now")
    pipeline.archive_snapshot(weekly, evaluated(weekly, computed_snapshot(**BAD)))
    week_file = env.archive.read_bytes(archive.period_file_name(END))
    week_row = query(env.db, "SELECT period_type, snapshot::text, run_id FROM investor_metrics.snapshots "
                             "WHERE series = 'weekly' AND period_end = %s", (END,))
    week_alerts = current_alerts(env)

    manual = make_context("manual__now", "manual")
    result = pipeline.archive_snapshot(manual, evaluated(manual, computed_snapshot(period_type="on_demand",
                                                                                   **OTHER_BAD)))
    assert result["period_file"].endswith(f"on_demand/{archive.period_file_name(END)}")
    assert env.archive.read_bytes(archive.period_file_name(END)) == week_file
    assert query(env.db, "SELECT period_type, snapshot::text, run_id FROM investor_metrics.snapshots "
                         "WHERE series = 'weekly' AND period_end = %s", (END,)) == week_row
    assert current_alerts(env) == week_alerts
    assert {a["rule"] for a in current_alerts(env, series="on_demand")} == {"mrr_growth_below_target"}
    assert env.archive.read("on_demand/" + archive.period_file_name(END))["period"]["type"] == "on_demand"
    # The same period end: metrics_snapshot.json stays the week (a tie goes to the weekly series).
    assert env.archive.read(archive.LATEST_NAME)["period"]["type"] == "weekly"
    assert_files_equal_store(env)

    # A later on-demand report is the freshest view, and says so.
    later = END + timedelta(days=7)  # (its churn baseline: the stored weeks)
    manual2 = make_context("manual__later", "manual", later)
    pipeline.archive_snapshot(manual2, evaluated(manual2, computed_snapshot(later, "on_demand")))
    latest = env.archive.read(archive.LATEST_NAME)
    assert (latest["period"]["type"], latest["period"]["end"]) == ("on_demand", iso_utc(later))
    assert env.archive.read_bytes(archive.period_file_name(END)) == week_file
    assert current_alerts(env) == week_alerts
    assert_files_equal_store(env)


# --------------------------------------------------------------------------- the SIGKILL test's worker
def _worker(argv: list[str]) -> int:
    if argv[:1] != ["archive"]:
        raise SystemExit("usage: test_publish_faults.py archive '{\"run_id\": ..., \"path\": ...}'")
    job = json.loads(argv[1])
    pipeline.archive_snapshot(make_context(job["run_id"]), job["path"])
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
