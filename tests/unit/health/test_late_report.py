"""health/late_report.py and mail/late_report.py: the late-report check of the probe DAG (SPEC 13,
docs/adr/late-report.md). Real PostgreSQL (a fresh metrics store per test), the project's SMTP sink
read back as the data team receives it; "now" is given, as the task gives its round.

The weekly schedule is the default, Sunday 09:00 UTC; the week of these tests ends Sunday
22 Nov 2026 09:00, so with the default deadline (120 minutes) it is late from 11:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from include.investor_metrics.db import connect
from include.investor_metrics.health import late_report, tasks
from include.investor_metrics.mail import send_log
from include.investor_metrics.mail.late_report import KIND_LATE_REPORT
from include.investor_metrics.period import iso_utc
from include.investor_metrics.retry_rules import BAD_INPUT_FAILS_AT_ONCE
from include.investor_metrics.settings import ConfigError
from include.investor_metrics.weekly.snapshots import upsert_snapshot
from tests.unit.health.peers import env, outbox  # noqa: F401 - env: a fixture

DATA_TEAM = ["data-team@chatterfix.example", "oncall@chatterfix.example"]
WEEK_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
PREVIOUS = WEEK_END - timedelta(days=7)
DEADLINE = WEEK_END + timedelta(minutes=120)
BASE_URL = "https://airflow.chatterfix.example"


@pytest.fixture()
def team(env, monkeypatch):  # noqa: F811 - the fixture
    monkeypatch.setenv("DATA_TEAM_EMAILS", ",".join(DATA_TEAM))
    for name in ("INVESTOR_REPORT_DEADLINE", "INVESTOR_METRICS_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    conn = connect(env.db)
    yield SimpleNamespace(env=env, conn=conn)
    conn.close()


def store_week(conn, end: datetime, period_type: str = "weekly") -> None:
    """A snapshot row of the week ending ``end`` (what archive_snapshot stores; its contents do not
    matter to the check)."""
    start = end - timedelta(days=7)
    snapshot = {"timestamp": iso_utc(end), "generated_at": iso_utc(end + timedelta(minutes=20)),
                "period": {"start": iso_utc(start), "end": iso_utc(end), "type": period_type}}
    with conn.cursor() as cur:
        upsert_snapshot(cur, snapshot, period_start=start, period_end=end,
                        run_id=f"scheduled__{end.isoformat()}")
    conn.commit()


def late_mails(env) -> list:  # noqa: F811 - env is the fixture's value here
    return [m for m in outbox(env) if str(m["X-ChatterFix-Send-Key"]).startswith(KIND_LATE_REPORT + ":")]


def check(team, now: datetime, **kwargs) -> dict:
    return late_report.check_late_report(team.conn, now, run_id="scheduled__probe", **kwargs)


# --------------------------------------------------------------------------- the four cases
def test_no_run_at_all_mails_the_data_team_once(team):
    store_week(team.conn, PREVIOUS)
    summary = check(team, DEADLINE + timedelta(minutes=5), airflow_base_url=BASE_URL)
    assert summary == {"checked_at": "2026-11-22T11:05:00Z", "period_end": "2026-11-22T09:00:00Z",
                       "deadline_at": "2026-11-22T11:00:00Z", "deadline_minutes": 120.0,
                       "status": "late", "emailed": True}
    mails = late_mails(team.env)
    assert sorted(str(m["X-Envelope-To"]).strip() for m in mails) == sorted(DATA_TEAM)
    assert len(outbox(team.env)) == 2  # nothing to the investors
    mail = mails[0]
    assert str(mail["Subject"]) == ("[LATE] ChatterFix investor metrics: the week ending 22 Nov 2026 is not "
                                    "archived 120 minutes (2 h) after its scheduled time")
    assert str(mail["X-ChatterFix-Send-Key"]) == "late_report:2026-11-22T09:00:00Z"
    text = mail.get_body(("plain",)).get_content()
    for expected in ("15 Nov 2026 09:00 – 22 Nov 2026 09:00 (UTC)",      # which week
                     "Sun 22 Nov 2026 09:00 (UTC), 2026-11-22T09:00:00Z",  # when it was due
                     "Sun 22 Nov 2026 11:00 (UTC): INVESTOR_REPORT_DEADLINE = 120 minutes",
                     "Sun 22 Nov 2026 11:05 (UTC) (probe round)",
                     "the latest archived: the week ending 15 Nov 2026",
                     "run id scheduled__2026-11-22T09:00:00+00:00",
                     f"Run list:      {BASE_URL}/dags/investor_metrics/runs",
                     f"Airflow DAG:   {BASE_URL}/dags/investor_metrics"):
        assert expected in text, expected
    html = mail.get_body(("html",)).get_content()
    assert f'href="{BASE_URL}/dags/investor_metrics/runs"' in html
    status = send_log.send_status(team.conn, KIND_LATE_REPORT, "2026-11-22T09:00:00Z")
    assert status["status"] == "sent" and sorted(status["sent_to"]) == sorted(DATA_TEAM)

    # every later probe round of the week: nothing more, until the next week is due
    for minutes in (10, 15, 60 * 24 * 6):
        assert check(team, DEADLINE + timedelta(minutes=minutes))["status"] == "late_already_sent"
    assert len(outbox(team.env)) == 2


def test_before_the_deadline_nothing(team):
    store_week(team.conn, PREVIOUS)
    summary = check(team, DEADLINE - timedelta(minutes=1))
    # the week due one minute before the deadline is the previous one, which is archived
    assert (summary["period_end"], summary["status"]) == ("2026-11-15T09:00:00Z", "archived")
    assert outbox(team.env) == []
    # at the deadline itself the week is due
    assert check(team, DEADLINE)["status"] == "late"
    assert len(late_mails(team.env)) == 2


def test_the_week_archived_nothing(team):
    store_week(team.conn, PREVIOUS)
    store_week(team.conn, WEEK_END, "backfill")  # a backfill run archiving the week counts
    assert check(team, DEADLINE + timedelta(hours=3))["status"] == "archived"
    assert outbox(team.env) == []
    assert send_log.send_status(team.conn, KIND_LATE_REPORT, "2026-11-22T09:00:00Z") is None


def test_an_on_demand_report_of_the_week_is_not_the_week(team):
    """A manual run ending at the week's end is archived in the on-demand series: the week is late."""
    store_week(team.conn, PREVIOUS)
    store_week(team.conn, WEEK_END, "on_demand")
    assert check(team, DEADLINE)["status"] == "late"
    assert len(late_mails(team.env)) == 2


def test_a_report_that_lands_after_the_mail_sends_nothing_more(team):
    store_week(team.conn, PREVIOUS)
    assert check(team, DEADLINE)["emailed"]
    store_week(team.conn, WEEK_END)
    assert check(team, DEADLINE + timedelta(minutes=30))["status"] == "archived"
    assert len(outbox(team.env)) == 2


def test_a_new_installation_is_not_late(team):
    """An empty store: nothing was ever archived, nothing has been deployed long enough to be late."""
    assert check(team, DEADLINE + timedelta(days=2))["status"] == "not_watched"
    store_week(team.conn, WEEK_END - timedelta(days=70))  # once a week was archived, it is watched
    assert check(team, DEADLINE + timedelta(days=2))["status"] == "late"
    assert len(late_mails(team.env)) == 2


def test_only_the_latest_due_week_is_looked_at(team):
    """Weeks missed during a long outage give one e-mail, for the latest of them."""
    store_week(team.conn, PREVIOUS - timedelta(days=21))
    summary = check(team, DEADLINE + timedelta(minutes=5))
    assert summary["period_end"] == "2026-11-22T09:00:00Z"
    assert {str(m["X-ChatterFix-Send-Key"]) for m in late_mails(team.env)} == {
        "late_report:2026-11-22T09:00:00Z"}


# --------------------------------------------------------------------------- settings
def test_the_deadline_and_the_schedule_in_the_investor_time_zone(team, monkeypatch):
    monkeypatch.setenv("INVESTOR_REPORT_DEADLINE", "30")
    monkeypatch.setenv("INVESTOR_METRICS_SCHEDULE", "0 9 * * 0")
    new_york = "America/New_York"  # Sunday 09:00 in New York = 14:00 UTC in November
    end = datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
    store_week(team.conn, end - timedelta(days=7))
    assert check(team, end + timedelta(minutes=29), tz=new_york)["period_end"] == "2026-11-15T14:00:00Z"
    summary = check(team, end + timedelta(minutes=30), tz=new_york)
    assert (summary["period_end"], summary["deadline_at"], summary["status"]) == (
        "2026-11-22T14:00:00Z", "2026-11-22T14:30:00Z", "late")
    text = late_mails(team.env)[0].get_body(("plain",)).get_content()
    assert "Sun 22 Nov 2026 09:30 (America/New_York): INVESTOR_REPORT_DEADLINE = 30 minutes" in text


@pytest.mark.parametrize("raw", ["2h", "0", "-5", "nan"])
def test_a_malformed_deadline_fails_at_once_naming_it(team, monkeypatch, raw):
    monkeypatch.setenv("INVESTOR_REPORT_DEADLINE", raw)
    store_week(team.conn, PREVIOUS)
    with pytest.raises(ConfigError, match="INVESTOR_REPORT_DEADLINE") as caught:
        check(team, DEADLINE)
    assert BAD_INPUT_FAILS_AT_ONCE.evaluate(caught.value, 1, 3).action.value == "fail"
    assert outbox(team.env) == []


def test_no_data_team_address_is_a_warning_not_a_failure(team, monkeypatch, caplog):
    monkeypatch.delenv("DATA_TEAM_EMAILS")
    store_week(team.conn, PREVIOUS)
    assert check(team, DEADLINE)["status"] == "late_nobody_to_tell"
    assert "DATA_TEAM_EMAILS is not set" in caplog.text
    assert outbox(team.env) == []


# --------------------------------------------------------------------------- transient errors retry
def test_an_smtp_outage_fails_the_try_and_the_retry_sends_once(team, monkeypatch):
    from tests.conftest import free_port

    store_week(team.conn, PREVIOUS)
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # no SMTP server there: connection refused
    with pytest.raises(send_log.EmailDeliveryError) as caught:
        check(team, DEADLINE)
    assert BAD_INPUT_FAILS_AT_ONCE.evaluate(caught.value, 1, 3).action.value == "default"  # retried
    monkeypatch.setenv("SMTP_PORT", str(team.env.smtp_port))  # the server is back
    assert check(team, DEADLINE)["emailed"]  # the retry, same round
    assert check(team, DEADLINE)["status"] == "late_already_sent"
    assert len(late_mails(team.env)) == 2


def test_the_task_with_the_store_unreachable_retries(team, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("DB_PORT", str(free_port()))  # nothing listens there
    context = {"dag_run": SimpleNamespace(logical_date=DEADLINE, run_after=DEADLINE,
                                          run_id="scheduled__probe")}
    with pytest.raises(Exception) as caught:
        tasks.run_late_report_check(context)
    assert "OperationalError" in type(caught.value).__name__
    assert BAD_INPUT_FAILS_AT_ONCE.evaluate(caught.value, 1, 3).action.value == "default"


def test_the_task_checks_as_of_its_round_not_the_wall_clock(team):
    """The round is the run's logical date floored to 5 minutes: a retry a day later decides the same."""
    store_week(team.conn, PREVIOUS)
    logical = DEADLINE + timedelta(minutes=7, seconds=30)
    context = {"dag_run": SimpleNamespace(logical_date=logical, run_after=logical, run_id="scheduled__p")}
    summary = tasks.run_late_report_check(context)
    assert (summary["checked_at"], summary["status"]) == ("2026-11-22T11:05:00Z", "late")
    early = DEADLINE - timedelta(minutes=3)
    context = {"dag_run": SimpleNamespace(logical_date=early, run_after=early, run_id="scheduled__q")}
    assert tasks.run_late_report_check(context)["period_end"] == "2026-11-15T09:00:00Z"
    assert len(late_mails(team.env)) == 2


# --------------------------------------------------------------------------- through the probe DAG
@pytest.fixture(scope="module")
def airflow_db():
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def test_the_probe_dag_reports_a_late_week_beside_its_probes(team, airflow_db):
    """``dag.test()`` of the probe DAG at a logical date past the deadline: the probes skip (a round
    that old measures nothing), the late-report check — independent of them — runs as of that round
    and e-mails the data team."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import PROJECT_ROOT

    store_week(team.conn, PREVIOUS)
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "service_health_probe.py"))
    dag = bag.dags["service_health_probe"]
    check_task = dag.get_task("check_late_report")
    assert check_task.upstream_task_ids == set() and check_task.downstream_task_ids == set()
    assert "INVESTOR_REPORT_DEADLINE" in check_task.doc_md and check_task.retries == 2
    dr = dag.test(logical_date=DEADLINE + timedelta(minutes=5))
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states == {"probe_services": "skipped", "handle_incidents": "skipped",
                      "check_late_report": "success"}, states
    [mail, _] = late_mails(team.env)
    assert "Sun 22 Nov 2026 11:05 (UTC) (probe round)" in mail.get_body(("plain",)).get_content()
