"""Sending exactly once per recipient (``mail/send.py``, ``mail/send_log.py``): a real SMTP server
(the project's sink) and a real PostgreSQL send log; concurrent senders, a sender that waits for
another's lease, an SMTP outage and the retry, the settings read from the seed's variables.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time

import pytest

from dev.stack import smtp_sink
from include.investor_metrics.db import connect
from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.alert_message import build_alert_message
from include.investor_metrics.mail.message import KIND_ALERT, KIND_WEEKLY_SUMMARY
from include.investor_metrics.mail.smtp import smtp_connection
from include.investor_metrics.mail.weekly_summary import weekly_summary_key
from include.investor_metrics.settings import ConfigError
from tests.conftest import free_port
from tests.unit.mail import helpers
from tests.unit.mail.helpers import (
    RECIPIENTS,
    SENDER,
    Sink,
    envelope_to,
    make_alert,
    psycopg3_connect,
    sink_env,
    summary,
)

# The shared fixtures (pytest finds a fixture by its name in the test module).
no_airflow_smtp_connection = helpers.no_airflow_smtp_connection
sink = helpers.sink
snapshot = helpers.snapshot
history = helpers.history


def test_each_message_shows_only_its_own_recipient(sink, metrics_conn, snapshot, history):
    """Point 11 of issue 13: no investor sees another's address, in any header or the envelope."""
    smtp = smtp_connection(env=sink_env(sink.port))
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                            message=summary(snapshot, history), run_id="r", smtp_conn=smtp)
    alert = build_alert_message(make_alert(), recipients=RECIPIENTS, sender=SENDER, tz="UTC")
    assert notify.send_once(metrics_conn, kind=KIND_ALERT, key="a1", message=alert, run_id="r",
                            smtp_conn=smtp)
    files = sink.files()
    assert len(files) == 2 * len(RECIPIENTS)
    for path in files:
        one = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        [own] = envelope_to(one)
        headers = "\n".join(f"{name}: {value}" for name, value in one.items()
                            if not name.startswith("X-Envelope"))
        for other in set(RECIPIENTS) - {own}:
            assert other not in headers, (own, other)
        assert own in str(one["To"]) and one["Cc"] is None and one["Bcc"] is None


def test_concurrent_senders_of_one_key_deliver_one_message(sink, metrics_db, snapshot, history):
    """Four workers (psycopg2 and psycopg 3, one in autocommit mode) send the same summary at once."""
    smtp = smtp_connection(env=sink_env(sink.port))
    connections = [connect(metrics_db), connect(metrics_db), psycopg3_connect(metrics_db),
                   psycopg3_connect(metrics_db, autocommit=True)]
    barrier = threading.Barrier(len(connections))
    results, errors = [], []

    def worker(conn):
        try:
            message = summary(snapshot, history)
            barrier.wait()
            results.append(notify.send_once(conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                            message=message, run_id="r", smtp_conn=smtp))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(conn,)) for conn in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors
        assert sorted(results) == [False, False, False, True]  # the first holds every lease, the others wait
        assert sorted(envelope_to(m)[0] for m in sink.parsed()) == sorted(RECIPIENTS)  # one copy each
        assert connections[3].autocommit is True  # restored
    finally:
        for conn in connections:
            conn.close()


class SlowOutbox(smtp_sink.OutboxHandler):
    """Takes a second to accept each message, and says when a message is being received."""

    def __init__(self, outbox):
        super().__init__(outbox)
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.receiving.set()
        await asyncio.sleep(1.0)
        return await super().handle_DATA(server, session, envelope)


def test_second_sender_waits_for_the_first_and_sends_nothing(tmp_path, metrics_db, snapshot, history):
    handler = SlowOutbox(tmp_path / "outbox")
    slow = Sink(tmp_path / "outbox", free_port(), handler=handler).start()
    smtp = smtp_connection(env=sink_env(slow.port))
    first_conn, second_conn = connect(metrics_db), psycopg3_connect(metrics_db)
    outcome = {}

    def first():
        outcome["first"] = notify.send_once(first_conn, kind=KIND_WEEKLY_SUMMARY,
                                            key=weekly_summary_key(snapshot),
                                            message=summary(snapshot, history), run_id="first",
                                            smtp_conn=smtp)

    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert handler.receiving.wait(30)  # the first sender is mid-conversation, holding the leases
        started = time.monotonic()
        second = notify.send_once(second_conn, kind=KIND_WEEKLY_SUMMARY, key=weekly_summary_key(snapshot),
                                  message=summary(snapshot, history), run_id="second", smtp_conn=smtp)
        waited = time.monotonic() - started
        thread.join(30)
        assert outcome["first"] is True and second is False
        assert waited > 0.5  # it waited for the first sender's leases instead of sending
        assert len(slow.files()) == len(RECIPIENTS)
    finally:
        slow.stop()
        first_conn.close()
        second_conn.close()


class RejectingOutbox(smtp_sink.OutboxHandler):
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        return "554 5.7.1 Message rejected (test)"


@pytest.mark.parametrize("outage", ["server stopped", "wrong port", "message rejected"])
def test_smtp_failure_raises_marks_nothing_and_the_retry_sends_exactly_one(
        outage, tmp_path, sink, metrics_conn, snapshot, history):
    key = weekly_summary_key(snapshot)
    good = smtp_connection(env=sink_env(sink.port))
    bad, rejecting = good, None
    if outage == "server stopped":
        sink.stop()
    elif outage == "wrong port":
        bad = smtp_connection(env=sink_env(free_port()))
    else:
        rejecting = Sink(tmp_path / "rejected", free_port(),
                         handler=RejectingOutbox(tmp_path / "rejected")).start()
        bad = smtp_connection(env=sink_env(rejecting.port))

    try:
        with pytest.raises(send_log.EmailDeliveryError,
                           match=r"could not send .* through 127\.0\.0\.1:\d+ \(connection 'smtp_default'"):
            notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key,
                             message=summary(snapshot, history), run_id="try-1", smtp_conn=bad)
    finally:
        if rejecting is not None:
            rejecting.stop()
    status = send_log.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)
    assert status["sent_to"] == []
    # deferred (a rejected message: each tried) or not attempted after the link failed (pending):
    # all owed, none left leased
    statuses = [row["status"] for row in status["rows"].values()]
    assert statuses[0] == "deferred" and set(statuses) <= {"deferred", "pending"}, statuses
    assert sink.files() == []

    if outage == "server stopped":
        sink.start()
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key,
                            message=summary(snapshot, history), run_id="try-2", smtp_conn=good) is True
    assert notify.send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=key,
                            message=summary(snapshot, history), run_id="try-3", smtp_conn=good) is False
    assert len(sink.files()) == len(RECIPIENTS)
    rows = send_log.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, key)["rows"].values()
    assert {(row["status"], row["run_id"]) for row in rows} == {("sent", "try-2")}


def test_a_malformed_investor_list_is_a_clear_error(sink, metrics_conn, monkeypatch, snapshot, history):
    for name, value in sink_env(sink.port, INVESTOR_EMAILS="ann@fund-a.example, bob at fund-b").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"INVESTOR_EMAILS has malformed address\(es\): bob at fund-b"):
        notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r")
    monkeypatch.setenv("INVESTOR_EMAILS", "")
    with pytest.raises(ConfigError, match="INVESTOR_EMAILS is not set"):
        notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history, run_id="r")
    assert sink.files() == []
    assert send_log.send_status(metrics_conn, KIND_WEEKLY_SUMMARY, weekly_summary_key(snapshot)) is None


def test_the_seed_variables_alone_deliver_the_summary(sink, metrics_conn, monkeypatch, snapshot, history):
    for name, value in sink_env(sink.port).items():
        monkeypatch.setenv(name, value)
    assert notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history,
                                      run_id="r", tz="UTC") is True
    assert notify.send_weekly_summary(metrics_conn, snapshot, previous=history[0], history=history,
                                      run_id="r", tz="UTC") is False
    received = sink.parsed()
    assert sorted(envelope_to(m)[0] for m in received) == sorted(RECIPIENTS)
    assert {str(m["X-Envelope-From"]) for m in received} == {SENDER}
