"""The data-quality failure message (``mail/data_quality_failure.py``): to the data team only,
once per failed try of a run."""

from __future__ import annotations

from include.investor_metrics.mail import send as notify
from include.investor_metrics.mail import send_log
from tests.unit.mail import helpers
from tests.unit.mail.helpers import DATA_TEAM, envelope_to, html_of, sink_env, text_of

# The shared fixtures (pytest finds a fixture by its name in the test module).
no_airflow_smtp_connection = helpers.no_airflow_smtp_connection
sink = helpers.sink
snapshot = helpers.snapshot


def test_data_quality_failure_goes_to_the_data_team_only(sink, metrics_conn, monkeypatch, snapshot):
    for name, value in sink_env(sink.port, DATA_TEAM_EMAILS=", ".join(DATA_TEAM)).items():
        monkeypatch.setenv(name, value)
    report = "/srv/airflow/docs/investors/data_quality/index.html"
    assert notify.send_data_quality_failure(metrics_conn,
                                            "expect_column_values_to_not_be_null failed: customers.name",
                                            report_path=report, period=snapshot["period"], run_id="r1",
                                            try_number=1, tz="UTC")
    [msg] = sink.parsed()
    assert envelope_to(msg) == DATA_TEAM
    assert str(msg["Subject"]) == ("[DATA QUALITY] ChatterFix investor metrics: validation failed, "
                                   "week ending 22 Nov 2026")
    assert report in text_of(msg) and "customers.name" in html_of(msg)
    # A second callback of the same try sends nothing more ...
    assert not notify.send_data_quality_failure(metrics_conn, "again", report_path=report,
                                                period=snapshot["period"], run_id="r1", try_number=1,
                                                tz="UTC")
    assert len(sink.files()) == 1
    # ... but the run cleared and failing again (its next try) alerts again (issue 13, point 14).
    assert notify.send_data_quality_failure(metrics_conn, "again", report_path=report,
                                            period=snapshot["period"], run_id="r1", try_number=2, tz="UTC")
    assert len(sink.files()) == 2
    status = send_log.send_status(metrics_conn, "data_quality_failure", "2026-11-22T09:00:00Z|r1|try 2")
    assert status["status"] == "sent"

    monkeypatch.delenv("DATA_TEAM_EMAILS")
    assert notify.send_data_quality_failure(metrics_conn, "x", report_path=None, period=snapshot["period"],
                                            run_id="r2", tz="UTC") is False
    assert len(sink.files()) == 2
