"""The benchmark's stand-in for a task's Airflow context (dev/bench/weekly/children.py ``step``): the pipeline
functions must run in it as they do under Airflow, including archive_snapshot's skip of the
e-mail tasks of a run that e-mails nobody."""

from __future__ import annotations

import pytest

from dev.bench.weekly import children as bench
from include.investor_metrics.weekly import tasks as pipeline

SHAPE = {
    "extract_business_data": {"upstream": []},
    "validate_data": {"upstream": ["extract_business_data"]},
    "archive_snapshot": {"upstream": ["validate_data"]},
    "send_alert_notifications": {"upstream": ["archive_snapshot"]},
    "send_weekly_summary": {"upstream": ["send_alert_notifications"]},
}


def test_downstream_is_transitive():
    assert bench._downstream(SHAPE, "archive_snapshot") == {"send_alert_notifications", "send_weekly_summary"}
    assert bench._downstream(SHAPE, "send_weekly_summary") == set()
    assert len(bench._downstream(SHAPE, "extract_business_data")) == 4


def test_archive_snapshot_skips_the_emails_of_the_stand_in_manual_run_and_keeps_its_value():
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    pushed: dict = {}
    context = bench.stand_in_context("archive_snapshot", bench._downstream(SHAPE, "archive_snapshot"), pushed)

    with pytest.raises(DownstreamTasksSkipped) as raised:
        pipeline._skip_emails_unless_sent(context, {"period_file": "x.json"})

    assert raised.value.tasks == ["send_alert_notifications", "send_weekly_summary"]
    assert pushed == {"return_value": {"period_file": "x.json"}}


def test_a_run_that_e_mails_skips_nothing():
    pushed: dict = {}
    context = bench.stand_in_context("archive_snapshot", {"send_alert_notifications"}, pushed)
    context["params"]["send_email"] = True

    pipeline._skip_emails_unless_sent(context, {"period_file": "x.json"})

    assert pushed == {}
