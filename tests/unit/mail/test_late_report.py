"""The late-report message (``mail/late_report.py``): pure, no network: its identity, its links only
when a safe base URL is configured, the week in the investor time zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from include.investor_metrics.mail.late_report import (
    LateWeek,
    airflow_links,
    build_late_report,
    late_report_key,
)
from include.investor_metrics.mail.message import message_id
from include.investor_metrics.settings import ConfigError

END = datetime(2026, 3, 29, 7, tzinfo=timezone.utc)  # Sunday 09:00 in Berlin, the day DST starts
WEEK = LateWeek(start=datetime(2026, 3, 22, 8, tzinfo=timezone.utc), end=END, deadline_minutes=45,
                deadline_at=END + timedelta(minutes=45), checked_at=END + timedelta(minutes=50))
SENDER = "metrics@chatterfix.example"


def test_identity_recipients_and_local_times():
    msg = build_late_report(WEEK, recipients="data@chatterfix.example", sender=SENDER, tz="Europe/Berlin")
    assert str(msg["Message-ID"]) == message_id("late_report", "2026-03-29T07:00:00Z", SENDER)
    assert late_report_key(END) == "2026-03-29T07:00:00Z"
    assert str(msg["To"]) == "data@chatterfix.example"
    assert str(msg["Subject"]).endswith("the week ending 29 Mar 2026 is not archived 45 minutes after its "
                                        "scheduled time")
    text = msg.get_body(("plain",)).get_content()
    assert "22 Mar 2026 09:00 – 29 Mar 2026 09:00 (Europe/Berlin)" in text
    assert "Sun 29 Mar 2026 09:45 (Europe/Berlin): INVESTOR_REPORT_DEADLINE = 45 minutes" in text
    assert "the latest archived: none" in text
    assert "set AIRFLOW__API__BASE_URL to get links here" in text and "href" not in str(msg)


@pytest.mark.parametrize("base", ["javascript:alert(1)", "/relative", "", None])
def test_no_link_without_a_safe_base_url(base):
    assert airflow_links(base) is None


def test_links_to_the_dag_and_its_runs():
    assert airflow_links("https://af.example/") == {"dag": "https://af.example/dags/investor_metrics",
                                                    "runs": "https://af.example/dags/investor_metrics/runs"}


def test_a_malformed_data_team_address_names_the_variable():
    with pytest.raises(ConfigError, match="DATA_TEAM_EMAILS"):
        build_late_report(WEEK, recipients="not-an-address", sender=SENDER, tz="UTC")
