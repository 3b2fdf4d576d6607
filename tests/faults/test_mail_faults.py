"""The e-mail path under faults (SPEC section 8, issue 13 points 1, 2, 5, 8, 13, 14).

Real parts only: an aiosmtpd server on 127.0.0.1 whose handler refuses a chosen recipient (4xx or
5xx), answers DATA after the client's timeout, drops the connection after DATA, or blocks in DATA
while the sending process is SIGKILLed; a real PostgreSQL send log, a database session that holds
a send-log row lock and is then terminated. Each test asserts the end state: the copies each
recipient holds (per message, with their Message-IDs), the send-log rows, the data team's reports
and the alerts' ``notified`` flags.
"""

from __future__ import annotations

import asyncio
import copy
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.db import connect
from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.alert_message import build_alert_message
from include.investor_metrics.mail.message import KIND_ALERT, KIND_WEEKLY_SUMMARY, message_id
from tests.conftest import PROJECT_ROOT, free_port
from tests.unit.mail.helpers import PERIOD_END, RECIPIENTS, SAMPLE_SNAPSHOT, SENDER, make_alert

KIND_DELIVERY_REPORT = "delivery_report"
DATA_TEAM = "data-team@chatterfix.example"
ANN, BOB, CY = RECIPIENTS
LEASE_SECONDS = 2
SMTP_TIMEOUT = 1


class FaultySmtp(smtp_sink.OutboxHandler):
    """The project's sink with faults to order: ``rcpt[address]`` = the reply to RCPT TO for that
    address; ``data_faults`` = what the next DATA commands do, one entry each: ``late`` (store,
    then answer after the client's timeout), ``drop`` (store, then drop the connection), ``block``
    (wait, without storing, until ``release``; then 451); ``reject_key`` = a send key whose
    messages get 554 at the end of DATA."""

    def __init__(self, outbox):
        super().__init__(outbox)
        self.rcpt: dict[str, str] = {}
        self.data_faults: list[str] = []
        self.reject_key: str | None = None
        self.in_data = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        fault = self.data_faults.pop(0) if self.data_faults else None
        content = envelope.original_content or envelope.content
        if fault == "block":
            self.in_data.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 aborted (test)"
        if self.reject_key and f"X-ChatterFix-Send-Key: {self.reject_key}".encode() in content:
            return "554 5.6.0 message rejected (test)"
        reply = await super().handle_DATA(server, session, envelope)
        if fault == "late":
            await asyncio.sleep(SMTP_TIMEOUT + 1.5)
        elif fault == "drop":
            server.transport.abort()
        return reply


class Server:
    def __init__(self, outbox):
        self.outbox = outbox
        self.handler = FaultySmtp(outbox)
        self.port = free_port()
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self):
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in smtp_sink.messages(self.outbox)]

    def copies(self, send_key_header: str | None = None) -> Counter:
        """(send key header, recipient) → number of copies received."""
        counted = Counter()
        for m in self.messages():
            key = str(m["X-ChatterFix-Send-Key"])
            if send_key_header is None or key == send_key_header:
                counted[(key, str(m["X-Envelope-To"]).strip())] += 1
        return counted

    def reports(self) -> list:
        return [m for m in self.messages()
                if str(m["X-ChatterFix-Send-Key"]).startswith(KIND_DELIVERY_REPORT + ":")]


@pytest.fixture()
def server(tmp_path, monkeypatch, metrics_db):
    box = Server(tmp_path / "outbox").start()
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    for name, value in {
        "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(box.port), "SMTP_STARTTLS": "false", "SMTP_SSL": "false",
        "INVESTOR_EMAIL": SENDER, "INVESTOR_EMAILS": ", ".join(RECIPIENTS), "DATA_TEAM_EMAILS": DATA_TEAM,
        "INVESTOR_SMTP_TIMEOUT_SECONDS": str(SMTP_TIMEOUT), "INVESTOR_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
        "INVESTOR_SEND_LOCK_TIMEOUT_SECONDS": "1",
        "DB_HOST": metrics_db.host, "DB_PORT": str(metrics_db.port), "DB_NAME": metrics_db.dbname,
        "DB_USER": metrics_db.user or "", "INVESTOR_TIMEZONE": "UTC",
        "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
    }.items():
        monkeypatch.setenv(name, value)
    yield box
    box.handler.release.set()
    box.stop()


def alert_message(alert_id="a1"):
    return build_alert_message(make_alert(id=alert_id), recipients=RECIPIENTS, sender=SENDER, tz="UTC")


def send_alert(metrics_conn, alert_id="a1", run_id="try-1"):
    return notify.send_once(metrics_conn, kind=KIND_ALERT, key=alert_id, message=alert_message(alert_id),
                            run_id=run_id, period_end=PERIOD_END)


def rows(metrics_conn, kind=KIND_ALERT, key="a1") -> dict:
    return send_log.send_status(metrics_conn, kind, key)["rows"]


# --------------------------------------------------------------------------- (a) 4xx for one of three
def test_a_temporarily_refused_recipient_gets_it_on_the_retry_and_the_others_once(server, metrics_conn):
    server.handler.rcpt[CY] = "450 4.2.1 mailbox busy, try later"
    with pytest.raises(send_log.EmailDeliveryError, match=r"cy@angels\.example: RCPT TO refused: 450"):
        send_alert(metrics_conn)  # the task fails: Airflow retries it
    assert server.copies() == Counter({("alert:a1", ANN): 1, ("alert:a1", BOB): 1})
    state = rows(metrics_conn)
    assert {r: v["status"] for r, v in state.items()} == {ANN: "sent", BOB: "sent", CY: "deferred"}
    assert state[CY]["smtp_code"] == 450

    del server.handler.rcpt[CY]
    assert send_alert(metrics_conn, run_id="try-2") is True  # the retry: only the refused one
    assert send_alert(metrics_conn, run_id="try-3") is False
    assert server.copies() == Counter({("alert:a1", r): 1 for r in RECIPIENTS})
    state = rows(metrics_conn)
    assert {r: (v["status"], v["attempts"], v["run_id"]) for r, v in state.items()} == {
        ANN: ("sent", 1, "try-1"), BOB: ("sent", 1, "try-1"), CY: ("sent", 2, "try-2")}
    assert server.reports() == []  # a temporary refusal is not a problem to report


# --------------------------------------------------------------------------- (b) 5xx for one of three
def test_a_permanently_refused_recipient_is_reported_and_does_not_block_the_others(
        server, metrics_conn, caplog):
    server.handler.rcpt[CY] = "550 5.1.1 no such user"
    assert send_alert(metrics_conn) is True  # the task succeeds, with a warning
    assert "permanently refused" in caplog.text and CY in caplog.text
    # no loop: nothing retried, nothing reported again
    assert send_alert(metrics_conn, run_id="try-2") is False
    investor_copies = Counter({k: v for k, v in server.copies().items() if k[0] == "alert:a1"})
    assert investor_copies == Counter({("alert:a1", ANN): 1, ("alert:a1", BOB): 1})
    [report] = server.reports()
    assert str(report["X-Envelope-To"]).strip() == DATA_TEAM
    text = report.get_body(("plain",)).get_content()
    assert CY in text and "550" in text and "permanently refused" in text and ANN not in text
    state = rows(metrics_conn)
    assert (state[CY]["status"], state[CY]["smtp_code"],
            state[CY]["refusal_reported"]) == ("refused", 550, True)
    assert send_log.send_status(metrics_conn, KIND_ALERT, "a1")["status"] == "sent"  # done: nothing owed


# --------------------------------------------------------------------------- (c, d) unknown outcomes
@pytest.mark.parametrize("fault", ["late", "drop"])
def test_an_unknown_outcome_is_recorded_resent_with_the_same_message_id_and_reported(
        fault, server, metrics_conn):
    server.handler.data_faults = [fault]  # the first DATA (ann's copy) is stored, its reply never arrives
    started = time.monotonic()
    with pytest.raises(send_log.EmailDeliveryError, match="outcome unknown"):
        send_alert(metrics_conn)
    assert time.monotonic() - started < SMTP_TIMEOUT + 10
    state = rows(metrics_conn)
    assert state[ANN]["status"] == "unknown" and state[ANN]["unknown_outcomes"] == 1
    assert {state[BOB]["status"], state[CY]["status"]} == {"pending"}  # not attempted on a broken link
    [report] = server.reports()  # the data team is told at once
    text = report.get_body(("plain",)).get_content()
    assert ANN in text and "outcome unknown" in text and message_id(KIND_ALERT, "a1", SENDER, ANN) in text
    assert state[ANN]["unknown_reported"] == 1

    assert send_alert(metrics_conn, run_id="try-2") is True  # the retry
    assert send_alert(metrics_conn, run_id="try-3") is False
    copies = server.copies("alert:a1")
    assert copies == Counter({("alert:a1", ANN): 2, ("alert:a1", BOB): 1, ("alert:a1", CY): 1})
    ann_ids = {str(m["Message-ID"]).strip() for m in server.messages()
               if str(m["X-Envelope-To"]).strip() == ANN and str(m["X-ChatterFix-Send-Key"]) == "alert:a1"}
    assert ann_ids == {message_id(KIND_ALERT, "a1", SENDER, ANN)}  # the copy is a duplicate by id
    state = rows(metrics_conn)
    assert {r: v["status"] for r, v in state.items()} == {r: "sent" for r in RECIPIENTS}
    assert (state[ANN]["unknown_outcomes"], state[ANN]["unknown_reported"],
            state[ANN]["attempts"]) == (1, 1, 2)
    assert len(server.reports()) == 1  # told once per unknown outcome


# --------------------------------------------------------------------------- (e) kill -9 mid-send
SENDER_PROCESS = """
import sys
from include.investor_metrics.mail import send as notify
from include.investor_metrics.db import connect
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.mail.alert_message import build_alert_message
from tests.unit.mail.helpers import PERIOD_END, RECIPIENTS, SENDER, make_alert
conn = connect(PostgresSettings(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] or None))
message = build_alert_message(make_alert(id="a1"), recipients=RECIPIENTS, sender=SENDER, tz="UTC")
notify.send_once(conn, kind="alert", key="a1", message=message, run_id="killed", period_end=PERIOD_END)
"""


def test_a_sender_killed_mid_send_leaves_a_lease_the_retry_takes_over_within_its_bound(
        server, metrics_conn, metrics_db, monkeypatch):
    server.handler.data_faults = ["block"]
    env = {**os.environ, "INVESTOR_SMTP_TIMEOUT_SECONDS": "30", "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SENDER_PROCESS, metrics_db.host, str(metrics_db.port),
                             metrics_db.dbname, metrics_db.user or ""], cwd=PROJECT_ROOT, env=env)
    try:
        assert server.handler.in_data.wait(60), "the sender never reached DATA"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    server.handler.release.set()
    state = rows(metrics_conn)
    assert ({v["status"] for v in state.values()} == {"sending"}
            and {v["lease_owner"] for v in state.values()} != {None})

    started = time.monotonic()
    assert send_alert(metrics_conn, run_id="retry") is True
    assert time.monotonic() - started < LEASE_SECONDS + 5  # waited for the lease, no hang
    assert server.copies("alert:a1") == Counter({("alert:a1", r): 1 for r in RECIPIENTS})
    state = rows(metrics_conn)
    assert {r: v["status"] for r, v in state.items()} == {r: "sent" for r in RECIPIENTS}
    assert state[ANN]["unknown_outcomes"] == 1 and "vanished mid-send" in state[ANN]["last_error"]
    [report] = server.reports()
    assert "vanished mid-send" in report.get_body(("plain",)).get_content()


# --------------------------------------------------------------------------- (f) a stuck lock holder
def test_a_stuck_session_holding_the_row_fails_the_send_clearly_then_the_retry_proceeds(
        server, metrics_conn, metrics_db):
    send_alert_rows = send_log.SendLog(metrics_conn, KIND_ALERT, "a1", owner="setup", lease_seconds=2,
                                       lock_timeout=1)
    send_alert_rows.insert(RECIPIENTS, PERIOD_END)
    stuck = connect(metrics_db)
    with stuck.cursor() as cur:  # a backend that locked the rows and never finishes its transaction
        cur.execute("SELECT * FROM investor_metrics.send_log WHERE send_key = 'a1' FOR UPDATE")
        cur.execute("SELECT pg_backend_pid()")
        (stuck_pid,) = cur.fetchone()
    try:
        started = time.monotonic()
        with pytest.raises(send_log.EmailDeliveryError, match=r"stayed locked by another database session .*"
                                                             r"INVESTOR_SEND_LOCK_TIMEOUT_SECONDS"):
            send_alert(metrics_conn)
        assert time.monotonic() - started < 5
        assert server.copies() == Counter()
        with metrics_conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (stuck_pid,))
        metrics_conn.commit()
        assert send_alert(metrics_conn, run_id="retry") is True
    finally:
        stuck.close()
    assert server.copies("alert:a1") == Counter({("alert:a1", r): 1 for r in RECIPIENTS})
    assert {v["status"] for v in rows(metrics_conn).values()} == {"sent"}


def test_a_live_lease_is_waited_for_then_a_clear_error_when_it_outlasts_the_bound(
        server, metrics_conn):
    log = send_log.SendLog(metrics_conn, KIND_ALERT, "a1", owner="other-worker|host|pid 1",
                           lease_seconds=3600, lock_timeout=1)
    log.insert(RECIPIENTS, PERIOD_END)
    log.claim(RECIPIENTS)  # another worker holds a long lease (a misconfigured one, or a hung SMTP)
    started = time.monotonic()
    with pytest.raises(send_log.EmailDeliveryError,
                       match=r"another sender still holds the send-log lease .*other-worker"):
        send_alert(metrics_conn)
    assert 2 * LEASE_SECONDS - 0.5 < time.monotonic() - started < 2 * LEASE_SECONDS + 5
    assert server.copies() == Counter()


# --------------------------------------------------------------------------- through the pipeline
def _snapshot(end, *, period_type="weekly", uptime=99.94):
    snap = copy.deepcopy(SAMPLE_SNAPSHOT)
    iso = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    snap["timestamp"] = iso
    snap["period"] = {"start": (end - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"), "end": iso,
                      "type": period_type}
    snap["system_health"]["uptime_percentage"] = uptime
    return snap


def publish(conn, end, *, period_type="weekly", uptime=99.94, critical=False) -> list[dict]:
    """Store a period's snapshot and its alerts as archive_snapshot does; returns the alerts."""
    from include.investor_metrics.weekly import snapshots as store
    from include.investor_metrics.weekly.alerts import evaluate
    from include.investor_metrics.weekly.alerts import store as alert_store
    from include.investor_metrics.weekly.series import series_of

    snap = _snapshot(end, period_type=period_type, uptime=uptime)
    if critical:
        snap["system_health"]["status"] = "critical"
    fired = evaluate.evaluate(snap, thresholds={}, previous_churned=[])
    snap["alerts"] = evaluate.snapshot_alerts(fired)
    store.ensure_schema(conn)
    store.publish(conn, snap, period_start=end - timedelta(days=7), period_end=end, run_id=f"run-{end:%m%d}",
                  alerts=fired)
    return [a for a in alert_store.alerts_for_period(conn, end, series=series_of(period_type))
            if a["severity"] in ("critical", "high")]


def context(end, *, run_type="scheduled", send_email=False, try_number=1):
    iso = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    dag_run = SimpleNamespace(run_type=run_type, run_id=f"{run_type}__{iso}", dag_id="investor_metrics",
                              data_interval_end=end if run_type == "scheduled" else None, run_after=end,
                              logical_date=end)
    return {"dag_run": dag_run, "params": {"period_end": None if run_type == "scheduled" else iso,
                                           "send_email": send_email},
            "ti": SimpleNamespace(try_number=try_number), "run_id": dag_run.run_id}


def notified(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT id, notified FROM investor_metrics.alerts")
        out = dict(cur.fetchall())
    conn.commit()
    return out


def summary_header(end, prefix="") -> str:
    return f"weekly_summary:{prefix}{end:%Y-%m-%dT%H:%M:%SZ}"


def test_an_outage_longer_than_the_retries_is_made_good_by_the_next_run_once(server, metrics_conn):
    from include.investor_metrics.weekly import email_tasks

    week1, week2 = PERIOD_END, PERIOD_END + timedelta(days=7)
    [urgent] = publish(metrics_conn, week1, uptime=98.1)
    server.stop()  # the SMTP outage outlasts every try of week 1's e-mail tasks
    for try_number in (1, 2, 3, 4):
        ctx = context(week1, try_number=try_number)
        with pytest.raises(send_log.EmailDeliveryError):
            email_tasks.send_weekly_summary(ctx)
        with pytest.raises(send_log.EmailDeliveryError):
            email_tasks.send_alert_notifications(ctx)
    assert notified(metrics_conn)[urgent["id"]] is False
    owed = send_log.owed(metrics_conn, KIND_WEEKLY_SUMMARY, since=week1 - timedelta(days=1), until=week2)
    assert [key for key, _ in owed] == ["2026-11-22T09:00:00Z"]

    server.start()  # recovery; next Sunday's run
    publish(metrics_conn, week2)
    for _ in range(2):  # and once more, as a cleared run would: nothing twice
        email_tasks.send_alert_notifications(context(week2))
        email_tasks.send_weekly_summary(context(week2))
    expected = Counter()
    for r in RECIPIENTS:
        expected[(summary_header(week1), r)] = 1
        expected[(summary_header(week2), r)] = 1
        expected[(f"alert:{urgent['id']}", r)] = 1
    assert server.copies() == expected
    assert notified(metrics_conn)[urgent["id"]] is True
    assert send_log.owed(metrics_conn, KIND_WEEKLY_SUMMARY, since=week1 - timedelta(days=1),
                         until=week2) == []
    assert send_log.owed_alerts(metrics_conn, since=week1 - timedelta(days=1), until=week2) == []


def test_the_email_tasks_run_in_parallel_after_the_archive():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py")).dags[
        "investor_metrics"]
    for task_id in ("email.send_alert_notifications", "email.send_weekly_summary"):
        task = dag.get_task(task_id)
        assert task.upstream_task_ids == {"archive_snapshot"}, task_id
        assert getattr(task.trigger_rule, "value", task.trigger_rule) == "all_success"
    assert dag.get_task("archive_snapshot").downstream_task_ids == {"email.send_alert_notifications",
                                                                     "email.send_weekly_summary"}


def test_an_alert_that_fails_for_good_does_not_stop_the_summary_nor_the_other_alert(server, metrics_conn):
    from include.investor_metrics.weekly import email_tasks

    urgent = publish(metrics_conn, PERIOD_END, uptime=98.1, critical=True)
    assert len(urgent) == 2
    doomed, other = urgent
    server.handler.reject_key = f"alert:{doomed['id']}"  # 554 at the end of DATA, every time
    with pytest.raises(send_log.EmailDeliveryError, match=doomed["id"]):
        email_tasks.send_alert_notifications(context(PERIOD_END))
    assert email_tasks.send_weekly_summary(context(PERIOD_END)) is True
    copies = server.copies()
    assert all(copies[(summary_header(PERIOD_END), r)] == 1 for r in RECIPIENTS)
    assert all(copies[(f"alert:{other['id']}", r)] == 1 for r in RECIPIENTS)
    assert not any(key == f"alert:{doomed['id']}" for key, _ in copies)
    assert notified(metrics_conn) == {doomed["id"]: False, other["id"]: True} | {
        k: v for k, v in notified(metrics_conn).items() if k not in (doomed["id"], other["id"])}


def test_notified_equals_the_send_log_after_a_mid_loop_failure_and_the_retry(server, metrics_conn):
    from include.investor_metrics.weekly import email_tasks
    from include.investor_metrics.weekly.alerts import store as alert_store

    first, second = publish(metrics_conn, PERIOD_END, uptime=98.1, critical=True)
    server.handler.reject_key = f"alert:{second['id']}"  # the second alert of the loop fails

    def consistent():
        flags = notified(metrics_conn)
        for alert in (first, second):
            assert flags[alert["id"]] == (
                send_log.send_status(metrics_conn, KIND_ALERT, alert["id"])["status"] == "sent")
        published = {a["id"]: a["notified"] for a in alert_store.all_alerts(metrics_conn)}
        assert published == flags
        return flags

    with pytest.raises(send_log.EmailDeliveryError):
        email_tasks.send_alert_notifications(context(PERIOD_END))
    assert consistent() == {first["id"]: True, second["id"]: False}

    server.handler.reject_key = None
    email_tasks.send_alert_notifications(context(PERIOD_END, try_number=2))  # the retry
    assert consistent() == {first["id"]: True, second["id"]: True}
    assert server.copies() == Counter(
        {(f"alert:{a['id']}", r): 1 for a in (first, second) for r in RECIPIENTS})


def test_an_on_demand_report_has_its_own_key_and_never_stands_in_for_the_week(server, metrics_conn):
    from include.investor_metrics.weekly import email_tasks

    publish(metrics_conn, PERIOD_END, period_type="on_demand")
    publish(metrics_conn, PERIOD_END)  # the scheduled week of the same end
    assert email_tasks.send_weekly_summary(context(PERIOD_END, run_type="manual", send_email=True)) is True
    # the week's own summary still goes out
    assert email_tasks.send_weekly_summary(context(PERIOD_END)) is True
    copies = server.copies()
    for r in RECIPIENTS:
        assert copies[(summary_header(PERIOD_END, "on_demand|"), r)] == 1
        assert copies[(summary_header(PERIOD_END), r)] == 1
    on_demand = [m for m in server.messages() if "on_demand|" in str(m["X-ChatterFix-Send-Key"])]
    assert all("(on demand)" in str(m["Subject"]) for m in on_demand)


def test_a_cleared_validation_run_that_fails_again_alerts_the_data_team_again(server, metrics_conn):
    from include.investor_metrics.weekly import email_tasks

    for try_number in (1, 1, 2):  # two callbacks of try 1, then the cleared run's try 2
        ctx = context(PERIOD_END, try_number=try_number)
        ctx["exception"] = RuntimeError("customers.name: expect_column_values_to_not_be_null: 2 bad rows")
        email_tasks.notify_data_team_of_failure(ctx)
    failures = [m for m in server.messages()
                if str(m["X-ChatterFix-Send-Key"]).startswith("data_quality_failure:")]
    assert sorted(str(m["X-ChatterFix-Send-Key"]) for m in failures) == [
        f"data_quality_failure:2026-11-22T09:00:00Z|scheduled__2026-11-22T09:00:00Z|try {n}" for n in (1, 2)]
