"""The weekly DAG end to end with ``dag.test()``: real PostgreSQL, generator data, real files.

The expected numbers are computed independently here with plain SQL over the source tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from dev.demo_data import loader
from include.investor_metrics.db import connect
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.weekly.task_ids import EXTRACT_TASKS
from tests.conftest import PROJECT_ROOT, fetch_all, free_port

END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
START = datetime(2026, 11, 15, 9, tzinfo=timezone.utc)
PERIOD_END = "2026-11-22T09:00:00Z"
# dag.test() runs are manual runs: on-demand reports, archived apart from the weekly series (SPEC 2)
ATTACHMENT = "metrics_2026-11-22_09-00-00.json"
PERIOD_FILE = f"on_demand/{ATTACHMENT}"
MARK = "__bad__"


@pytest.fixture(scope="module")
def airflow_db():
    """Airflow's metadata database of the test session (SQLite in the test AIRFLOW_HOME)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


@pytest.fixture(scope="module")
def source_db(pg_database):
    # an outage of the 'api' service inside the reported week, so an alert must fire
    loader.load(pg_database, end=END, span_days=150, seed=11, outage_week="2026-11-15", progress=False)
    return pg_database


INVESTORS = ["founder@chatterfix.example", "investor.one@fund.example", "investor.two@fund.example"]
DATA_TEAM = "data-team@chatterfix.example"


@pytest.fixture()
def dag_env(monkeypatch, source_db, tmp_path, airflow_db):
    from dev.stack import smtp_sink

    port = free_port()
    sink = smtp_sink.start(tmp_path / "outbox", port=port)
    for key, value in {
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_STARTTLS": "false",
        "SMTP_SSL": "false",
        "INVESTOR_EMAIL": "metrics@chatterfix.example",
        "INVESTOR_EMAILS": ",".join(INVESTORS),
        "DATA_TEAM_EMAILS": DATA_TEAM,
        "DB_HOST": source_db.host,
        "DB_PORT": str(source_db.port),
        "DB_NAME": source_db.dbname,
        "DB_USER": source_db.user or "",
        "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
        "INVESTOR_STAGING_DIR": str(tmp_path / "staging"),
        "INVESTOR_TIMEZONE": "UTC",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HEALTH_CHECK_SERVICES", raising=False)
    # each test starts from an empty metrics store (send log, alerts, snapshots)
    conn = connect(source_db)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS investor_metrics.snapshots, investor_metrics.alerts, "
                    "investor_metrics.send_log")
    conn.close()
    yield tmp_path
    sink.stop()


def outbox(tmp_path) -> list:
    import email
    import email.policy

    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def run_dag(period_end: str = PERIOD_END, send_email: bool = False, retries: int | None = None):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "investor_metrics.py")).dags["investor_metrics"]
    if retries is not None:  # dag.test() waits out retry delays in-process: a failing test turns them off
        for task in dag.tasks:
            task.retries = retries
    dr = dag.test(run_conf={"period_end": period_end, "send_email": send_email}, logical_date=None)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    return dr, states


def _q(settings, sql, params=None):
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or {})
            return cur.fetchone()
    finally:
        conn.close()


def _cents(twelfths) -> float:
    return float((Decimal(int(twelfths)) / 1200).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _pct(num, den) -> float | None:
    if not den:
        return None
    return float(
        (Decimal(int(num)) * 100 / Decimal(int(den))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    )


def test_a_week_end_to_end(dag_env, source_db):
    dr, states = run_dag()
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states
    archive = dag_env / "archive"
    snapshot = json.loads((archive / PERIOD_FILE).read_text())
    latest = json.loads((archive / "metrics_snapshot.json").read_text())
    assert latest == snapshot
    # the latest pointer keeps the key order of the period file (it comes back from the store)
    assert (archive / "metrics_snapshot.json").read_text() == (archive / PERIOD_FILE).read_text()

    assert snapshot["timestamp"] == PERIOD_END
    assert snapshot["period"] == {"start": "2026-11-15T09:00:00Z", "end": PERIOD_END, "type": "on_demand"}
    assert list(snapshot) == ["timestamp", "generated_at", "period", "system_health", "ai_platform",
                              "financial", "business_health", "retention", "segments", "movements",
                              "data_quality", "alerts"]
    p = {"start": START, "end": END}

    mrr12, active = _q(source_db, """
        SELECT coalesce(sum(m), 0), count(*) FILTER (WHERE m > 0) FROM (
          SELECT customer_id,
                 sum(CASE billing_interval WHEN 'month' THEN amount_cents * 12 ELSE amount_cents END) m
          FROM subscriptions WHERE started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s)
          GROUP BY customer_id) t""", p)
    assert snapshot["financial"]["mrr"] == _cents(mrr12)
    assert snapshot["financial"]["arr"] == _cents(mrr12 * 12)
    assert snapshot["financial"]["active_customers"] == active

    mrr12_start = _q(source_db, """
        SELECT coalesce(sum(CASE billing_interval WHEN 'month' THEN amount_cents * 12
                                 ELSE amount_cents END), 0)
        FROM subscriptions
        WHERE started_at < %(start)s AND (ended_at IS NULL OR ended_at >= %(start)s)""", p)[0]
    assert snapshot["financial"]["net_new_mrr"] == _cents(mrr12 - mrr12_start)

    total, chat, hits, errors = _q(source_db, """
        SELECT count(*), count(*) FILTER (WHERE request_type = 'chat'), count(*) FILTER (WHERE cache_hit),
               count(*) FILTER (WHERE status = 'error')
        FROM ai_requests WHERE requested_at >= %(start)s AND requested_at < %(end)s""", p)
    ai = snapshot["ai_platform"]
    assert (ai["total_requests"], ai["chat_requests"], ai["api_requests"]) == (total, chat, total - chat)
    assert ai["cache_hit_rate"] == _pct(hits, total)
    assert ai["error_rate"] == _pct(errors, total)

    checks, ok, p95 = _q(source_db, """
        SELECT count(*), count(*) FILTER (WHERE ok),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY response_ms)
                 FILTER (WHERE ok AND response_ms IS NOT NULL)
        FROM investor_metrics.service_health_checks
        WHERE checked_at >= %(start)s AND checked_at < %(end)s""", p)
    sh = snapshot["system_health"]
    assert sh["uptime_percentage"] == _pct(ok, checks)
    assert sh["p95_response_time_ms"] == round(float(p95), 2)
    assert sh["services_total"] == 5

    responses, promoters, detractors = _q(source_db, """
        SELECT count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)
        FROM nps_responses
        WHERE responded_at >= %(end)s - interval '90 days' AND responded_at < %(end)s""", p)
    nps = snapshot["business_health"]["customer_satisfaction"]
    assert nps["responses"] == responses
    assert nps["nps"] == pytest.approx(
        float((Decimal(promoters - detractors) * 100 / responses).quantize(Decimal("0.01"), ROUND_HALF_UP)))

    assert snapshot["data_quality"]["success"] is True
    assert_depth_sections(snapshot, source_db)

    # alerts: what the rules say about this snapshot is in the snapshot, the store and the history

    history = json.loads((archive / "alert_history.json").read_text())["alerts"]
    assert sorted(a["id"] for a in history) == sorted(a["id"] for a in snapshot["alerts"])
    for alert in snapshot["alerts"]:
        assert (alert["period_end"] == PERIOD_END
                and alert["severity"] in ("critical", "high", "medium", "low"))
        assert "run_id" not in alert and "notified" not in alert
    nrr = snapshot["retention"]["nrr_12m"]
    assert ("net_revenue_retention_below_target" in {a["rule"] for a in snapshot["alerts"]}) == (
        nrr is not None and nrr < 100)
    growth = snapshot["financial"]["mrr_growth_rate"]
    assert ("mrr_growth_below_target" in {a["rule"] for a in snapshot["alerts"]}) == (
        growth is not None and growth < 5)
    uptime_alert = next(a for a in snapshot["alerts"] if a["rule"] == "uptime_below_target")
    assert (uptime_alert["severity"], uptime_alert["category"]) == ("high", "system")
    assert uptime_alert["value"] == snapshot["system_health"]["uptime_percentage"] < 99.5
    assert snapshot["system_health"]["status"] == "degraded"

    # the snapshot is in the metrics store too, once
    assert _q(source_db, "SELECT count(*) FROM investor_metrics.snapshots "
                         "WHERE period_end = %(end)s", p)[0] == 1

    # a rerun of the period gives the same snapshot (but generated_at) and no second row
    dr2, states2 = run_dag()
    assert str(dr2.state) in ("success", "DagRunState.SUCCESS"), states2
    again = json.loads((archive / PERIOD_FILE).read_text())
    assert {k: v for k, v in again.items() if k != "generated_at"} == {
        k: v for k, v in snapshot.items() if k != "generated_at"}
    assert _q(source_db, "SELECT count(*) FROM investor_metrics.snapshots")[0] == 1
    assert _q(source_db, "SELECT count(*) FROM investor_metrics.alerts")[0] == len(snapshot["alerts"])
    # the run's staging folder is kept (a retry or a clear of any task finds its input again); the
    # folders of runs older than the retention are cleaned up by later runs
    assert any(Path(dag_env / "staging").rglob("*.parquet"))
    # an on-demand run without send_email e-mails nobody
    assert outbox(dag_env) == []
    # archive_snapshot skipped both e-mail tasks itself (ShortCircuit style) and still returned its value
    assert states2["email.send_alert_notifications"] in ("skipped", "TaskInstanceState.SKIPPED")
    assert states2["email.send_weekly_summary"] in ("skipped", "TaskInstanceState.SKIPPED")
    assert states2["archive_snapshot"] in ("success", "TaskInstanceState.SUCCESS")
    archived = dr2.get_task_instance("archive_snapshot").xcom_pull(task_ids="archive_snapshot")
    assert archived["period_file"].endswith(PERIOD_FILE)

    # each run published the snapshot: one event of the Asset each, from archive_snapshot, with the
    # period, its type and MRR (the Slack DAG is scheduled on these)
    expected = {"period_end": PERIOD_END, "period_type": "on_demand", "mrr": snapshot["financial"]["mrr"],
                "series": "on_demand", "announce": False}  # without send_email: no e-mail, no Slack
    assert snapshot_asset_events([dr.run_id, dr2.run_id]) == [
        (dr.run_id, "archive_snapshot", expected), (dr2.run_id, "archive_snapshot", expected)]


def snapshot_asset_events(run_ids) -> list[tuple]:
    """(run id, task id, extra) of the events of the snapshot Asset these runs recorded in Airflow's
    metadata database, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.investor_metrics.contract import SNAPSHOT_ASSET_NAME

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.source_run_id, AssetEvent.source_task_id, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.name == SNAPSHOT_ASSET_NAME, AssetEvent.source_run_id.in_(list(run_ids)))
            .order_by(AssetEvent.timestamp)
        ).all()
    return [(run_id, task_id, extra) for run_id, task_id, extra in rows]


MRR_AS_OF = """
    SELECT customer_id,
           sum(CASE billing_interval WHEN 'month' THEN amount_cents * 12 ELSE amount_cents END) m
    FROM subscriptions
    WHERE amount_cents > 0 AND started_at < %(t)s AND (ended_at IS NULL OR ended_at >= %(t)s)
    GROUP BY customer_id"""


_all = fetch_all  # tests/conftest.py


def assert_depth_sections(snapshot, source_db):
    """SPEC 4b, recomputed with plain SQL over the source tables (UTC, so a month back is 22 Oct)."""
    retention = snapshot["retention"]
    for key, base in (("12m", datetime(2025, 11, 22, 9, tzinfo=timezone.utc)),
                      ("1m", datetime(2026, 10, 22, 9, tzinfo=timezone.utc))):
        b_sum, e_sum, kept, customers, still = _q(source_db, f"""
            SELECT sum(b.m), coalesce(sum(e.m), 0), coalesce(sum(least(b.m, coalesce(e.m, 0))), 0),
                   count(*), count(e.m)
            FROM ({MRR_AS_OF.replace("%(t)s", "%(base)s")}) b
            LEFT JOIN ({MRR_AS_OF.replace("%(t)s", "%(end)s")}) e USING (customer_id)""",
            {"base": base, "end": END})
        assert retention[f"nrr_{key}"] == _pct(e_sum, b_sum)
        assert retention[f"grr_{key}"] == _pct(kept, b_sum)
        if key == "12m":
            assert retention["logo_retention_12m"] == _pct(still, customers)
    # the generator's 150 days hold nobody paying a year back: no base set, no NRR, no alert
    assert retention["nrr_12m"] is retention["grr_12m"] is retention["logo_retention_12m"] is None
    assert retention["nrr_1m"] is not None
    sizes = dict(_all(source_db, """
        SELECT to_char(first_paid, 'YYYY-MM'), count(*) FROM (
          SELECT min(started_at) first_paid FROM subscriptions WHERE amount_cents > 0 GROUP BY customer_id) f
        WHERE first_paid >= '2025-12-01T00:00:00Z' AND first_paid < %(end)s GROUP BY 1""", {"end": END}))
    months = [f"{2025 + (11 + k) // 12}-{(11 + k) % 12 + 1:02d}" for k in range(12)]  # 2025-12 … 2026-11
    assert [(c["month"], c["customers"]) for c in retention["cohorts"]] == [
        (m, sizes.get(m, 0)) for m in months]
    for cohort in retention["cohorts"]:
        assert cohort["checkpoints"][-1]["as_of"] == PERIOD_END

    by_plan = snapshot["segments"]["by_plan"]
    plan_mrr = dict(_all(source_db, """
        SELECT coalesce(plan, 'unknown'),
               sum(CASE billing_interval WHEN 'month' THEN amount_cents * 12 ELSE amount_cents END)
                 FILTER (WHERE started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s))
        FROM subscriptions  -- the plans of the subscriptions running as of start or as of end
        WHERE (started_at < %(start)s AND (ended_at IS NULL OR ended_at >= %(start)s))
           OR (started_at < %(end)s AND (ended_at IS NULL OR ended_at >= %(end)s))
        GROUP BY 1""", {"start": START, "end": END}))
    assert {plan: one["mrr"] for plan, one in by_plan.items()} == {
        plan: _cents(m or 0) for plan, m in plan_mrr.items()}
    financial = snapshot["financial"]
    assert round(sum(one["mrr"] for one in by_plan.values()), 2) == financial["mrr"]

    moves = _all(source_db, f"""
        SELECT customer_id, coalesce(s.m, 0), coalesce(e.m, 0)
        FROM ({MRR_AS_OF.replace("%(t)s", "%(start)s")}) s
        FULL JOIN ({MRR_AS_OF.replace("%(t)s", "%(end)s")}) e USING (customer_id)
        WHERE coalesce(s.m, 0) <> coalesce(e.m, 0)
        ORDER BY abs(coalesce(e.m, 0) - coalesce(s.m, 0)) DESC, customer_id LIMIT 10""",
        {"start": START, "end": END})
    assert [(m["customer_id"], m["mrr_start"], m["mrr_end"], m["change"])
            for m in snapshot["movements"]["largest"]] == [
        (c, _cents(s), _cents(e), _cents(e - s)) for c, s, e in moves]
    for m in snapshot["movements"]["largest"]:
        assert m["name"]
        s, e = m["mrr_start"], m["mrr_end"]
        assert m["kind"] == ("churned" if e == 0 else "expansion" if 0 < s < e else "contraction" if s else
                             m["kind"] if m["kind"] in ("new", "reactivation") else "new or reactivation")


def test_on_demand_run_with_send_email_mails_alerts_then_the_summary_once(dag_env):
    dr, states = run_dag(send_email=True)
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states
    messages = outbox(dag_env)
    subjects = [m["Subject"] for m in messages]
    # the outage week raises a high uptime alert: e-mailed on its own (in parallel with the summary)
    alert_mails = [m for m in messages
                   if m["Subject"].startswith("[HIGH]") and "uptime" in m["Subject"].lower()]
    assert sorted(m["X-Envelope-To"] for m in alert_mails) == sorted(INVESTORS), subjects
    summary = [m for m in messages if m["Subject"].startswith("ChatterFix investor metrics")]
    # one copy per investor, each addressed to that investor alone, under the on-demand key
    assert sorted(m["X-Envelope-To"] for m in summary) == sorted(INVESTORS), subjects
    assert all(m["To"].addresses[0].addr_spec == m["X-Envelope-To"] for m in summary)
    assert {m["X-ChatterFix-Send-Key"] for m in summary} == {"weekly_summary:on_demand|2026-11-22T09:00:00Z"}
    assert "week ending 22 Nov 2026" in summary[0]["Subject"]
    html = summary[0].get_body(("html",)).get_content()
    cids = {p["Content-ID"].strip("<>") for p in summary[0].walk() if p.get_content_type() == "image/png"}
    # 4 trend charts and the MRR movements chart (SPEC 4b), each referenced from the HTML
    assert len(cids) == 5 and all(f"cid:{cid}" in html for cid in cids)
    assert any(cid.startswith("chart-mrr_movements.") for cid in cids)
    attached = [p for p in summary[0].iter_attachments() if p.get_filename() == ATTACHMENT]
    snapshot = json.loads((dag_env / "archive" / PERIOD_FILE).read_text())
    assert json.loads(attached[0].get_content()) == snapshot
    history = json.loads((dag_env / "archive" / "alert_history.json").read_text())["alerts"]
    assert any(a["rule"] == "uptime_below_target" and a["notified"] for a in history)

    # a rerun of the period sends nothing more
    dr2, _ = run_dag(send_email=True)
    assert str(dr2.state) in ("success", "DagRunState.SUCCESS")
    assert len(outbox(dag_env)) == len(messages)


def test_smtp_down_fails_the_send_and_the_retry_delivers_exactly_one(dag_env, monkeypatch):
    from dev.stack import smtp_sink

    down_port = free_port()  # nothing listens there
    monkeypatch.setenv("SMTP_PORT", str(down_port))
    dr, states = run_dag(send_email=True, retries=0)
    # in parallel: each e-mail task fails on its own (neither waits for the other)
    assert states["email.send_alert_notifications"] in ("failed", "TaskInstanceState.FAILED"), states
    assert str(states["email.send_weekly_summary"]) in ("failed", "TaskInstanceState.FAILED"), states
    assert _q_send_log_sent(dag_env) == 0  # nothing marked sent that was not sent
    # the snapshot itself was published: only the e-mail failed
    assert (dag_env / "archive" / PERIOD_FILE).exists()

    sink = smtp_sink.start(dag_env / "outbox2", port=down_port)
    try:
        dr2, states2 = run_dag(send_email=True)  # the retry
        assert str(dr2.state) in ("success", "DagRunState.SUCCESS"), states2
        mails = sorted((dag_env / "outbox2").glob("*.eml"))
        subjects = [m.read_text(errors="replace").split("Subject: ", 1)[1].split("\n", 1)[0] for m in mails]
        assert sum(s.startswith("ChatterFix investor metrics") for s in subjects) == len(INVESTORS), subjects
        assert sum(s.startswith("[HIGH]") for s in subjects) == len(INVESTORS), subjects
    finally:
        sink.stop()


def _q_send_log_sent(dag_env) -> int:
    import os

    settings = PostgresSettings(os.environ["DB_HOST"], int(os.environ["DB_PORT"]), os.environ["DB_NAME"],
                                os.environ["DB_USER"] or None)
    return _q(settings, "SELECT count(*) FROM investor_metrics.send_log WHERE status = 'sent'")[0]


# The one dag.test-level bad-data case: it proves that a refused period publishes nothing and
# e-mails only the data team. Every class of bad input is refused at validate_period level, which
# costs a second instead of a DAG run: tests/unit/validation/test_rules.py (each rule, with its
# count) and tests/faults/test_bad_input.py (the docs' table). (table, column, SQL adding 2 bad rows inside
# the period's windows, marked so the fixture can remove them.) An amount near the bigint maximum:
# 12 x it wrapped int64 (MRR $49.99) and passed validation.
BAD_DATA = {
    "subscriptions.amount_cents near the bigint maximum": (
        "subscriptions", "amount_cents",
        f"INSERT INTO subscriptions SELECT 9000000000 + customer_id, customer_id, '{MARK}', 'month',"
        " 9223372036854775807, '2026-11-01', NULL FROM customers ORDER BY customer_id LIMIT 2"),
}

CLEANUP = [
    f"DELETE FROM customers WHERE plan = '{MARK}' OR name = '{MARK}'",
    f"DELETE FROM subscriptions WHERE plan = '{MARK}'",
    f"DELETE FROM leads WHERE source = '{MARK}'",
    "DELETE FROM nps_responses WHERE responded_at = '2026-11-20T01:23:45.678Z'",
    f"DELETE FROM usage_events WHERE event_type = '{MARK}'",
    f"DELETE FROM ai_requests WHERE provider = '{MARK}'",
]


@pytest.fixture()
def bad_rows(source_db):
    def add(sql):
        conn = connect(source_db)
        with conn, conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    yield add
    conn = connect(source_db)
    with conn, conn.cursor() as cur:
        for sql in CLEANUP:
            cur.execute(sql)
    conn.close()


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_stops_the_run_at_validation(case, dag_env, bad_rows, capfd):
    table, column, sql = BAD_DATA[case]
    archive = dag_env / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "metrics_snapshot.json").write_text('{"published": "before"}\n')
    bad_rows(sql)
    dr, states = run_dag()
    assert states["validate_data"] in ("failed", "TaskInstanceState.FAILED"), states
    assert states["compute_metrics"] in ("upstream_failed", "TaskInstanceState.UPSTREAM_FAILED"), states
    assert str(states["archive_snapshot"]) in ("upstream_failed", "TaskInstanceState.UPSTREAM_FAILED")
    # only the data team hears about it
    mails = outbox(dag_env)
    assert [m["X-Envelope-To"] for m in mails] == [DATA_TEAM]
    # the previously published snapshot is untouched, no period file was written
    assert (archive / "metrics_snapshot.json").read_text() == '{"published": "before"}\n'
    assert not (archive / PERIOD_FILE).exists()
    # the failure names table, column and the number of bad rows
    captured = capfd.readouterr()
    text = captured.out + captured.err
    # duplicates: both rows of each of the 2 duplicated ids are reported (4 rows)
    bad = 4 if case.endswith("unique") else 2
    assert f"{table}.{column}: {bad} rows violate rule" in text, text[-3000:]


def test_a_week_before_the_data_gives_an_honest_snapshot(dag_env):
    # the generator's data starts 150 days before 2026-11-22: this week has no rows in any window
    dr, states = run_dag(period_end="2026-05-03T09:00:00Z")
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states
    snapshot = json.loads(
        (dag_env / "archive" / "on_demand" / "metrics_2026-05-03_09-00-00.json").read_text())
    fin, biz, ai = snapshot["financial"], snapshot["business_health"], snapshot["ai_platform"]
    assert (fin["mrr"], fin["active_customers"], ai["total_requests"]) == (0.0, 0, 0)
    # rates without a denominator are null, not 0 and not an error
    assert fin["mrr_growth_rate"] is None and fin["arpa"] is None and biz["logo_churn_rate"] is None
    assert ai["cache_hit_rate"] is None and snapshot["system_health"]["uptime_percentage"] is None
    assert snapshot["data_quality"]["success"] is True
    assert snapshot["data_quality"]["warnings"], "thin data must be flagged"


# --------------------------------------------------------------------------- object storage (SPEC 7, 13)
def test_a_week_on_object_storage(dag_env, source_db, s3_server, s3_bucket, monkeypatch, capfd, caplog):
    """Archive and staging on the loopback S3 server (``aws_default`` names its endpoint): the run
    succeeds, nothing is staged or archived on the local disk, the archive objects equal the store
    and the run's frames are staged under its own prefix; the connection's secret is in no log
    line and no file."""
    import logging

    from include.investor_metrics.weekly import snapshots as store
    from tests.object_store import Files

    caplog.set_level(logging.DEBUG)
    archive_url, staging_url = f"s3://{s3_bucket}/investors", f"s3://{s3_bucket}/staging"
    monkeypatch.setenv("INVESTOR_ARCHIVE_DIR", archive_url)
    monkeypatch.setenv("INVESTOR_STAGING_DIR", staging_url)
    dr, states = run_dag()
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), states
    assert not (dag_env / "archive").exists() and not (dag_env / "staging").exists()

    archive = Files(archive_url, s3_server)
    snapshot = archive.read(PERIOD_FILE)
    conn = connect(source_db)
    try:
        assert snapshot == store.snapshot_for(conn, END, series="on_demand")
        assert archive.read("metrics_snapshot.json") == store.latest_snapshot(conn)
    finally:
        conn.close()
    assert archive.read_bytes("metrics_snapshot.json") == archive.read_bytes(PERIOD_FILE)
    history = archive.read("alert_history.json")["alerts"]
    assert [a["id"] for a in history] == [a["id"] for a in snapshot["alerts"]]
    assert snapshot["alerts"], "the outage week raises an alert"
    assert snapshot["financial"]["mrr"] > 0

    staged = Files(staging_url, s3_server).files(suffix="")
    run_prefix = "investor_metrics/" + dr.run_id.replace(":", "_").replace("+", "_") + "/"
    names = {name.removeprefix(run_prefix) for name in staged}
    assert names >= {"business/depth_customers.parquet", "business/depth_refused.json", "ai/ai.parquet",
                     "health/health.parquet", "snapshot.json", "snapshot_with_alerts.json"}, sorted(staged)

    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert s3_server.secret_key not in logs
    for body in [*archive.files().values(), *staged.values()]:
        assert s3_server.secret_key.encode() not in body


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("setting", "url"), [("INVESTOR_STAGING_DIR", "sftp://files.example/staging"),
                                              ("INVESTOR_ARCHIVE_DIR", "webdav://dav.example/investors")])
def test_a_storage_url_without_atomic_replace_fails_the_run_at_once_naming_it(dag_env, setting, url,
                                                                              monkeypatch, capfd):
    """With the DAG's own retries (3, from 2 minutes): the extracts fail on their first try, the
    message names the setting, the URL and why; nothing runs after them."""
    import time

    monkeypatch.setenv(setting, url)
    started = time.monotonic()
    dr, states = run_dag()
    elapsed = time.monotonic() - started
    assert str(dr.state) in ("failed", "DagRunState.FAILED"), states
    tries = {ti.task_id: ti.try_number for ti in dr.get_task_instances()}
    for task in EXTRACT_TASKS:
        assert str(states[task]) in ("failed", "TaskInstanceState.FAILED"), states
        assert tries[task] == 1, tries
    assert str(states["archive_snapshot"]) in ("upstream_failed", "TaskInstanceState.UPSTREAM_FAILED")
    assert elapsed < 120, f"{elapsed:.0f} s: the run waited out retries"
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert f"{setting}={url!r} is refused" in text, text[-3000:]
    assert "cannot replace a file atomically" in text
