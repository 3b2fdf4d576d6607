"""The task body against a real PostgreSQL store and a real HTTP server on loopback (the demo's
webhook sink), through the Slack provider: what is posted, once; a 500 and the retry; backfills;
no connection."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.investor_metrics import contract
from include.investor_metrics.mail.send_log import send_status
from include.investor_metrics.slack.post import KIND_SLACK_UPDATE, SlackDeliveryError
from include.investor_metrics.slack.tasks import post_snapshot_updates
from tests.unit.slack.helpers import ALERT, END, WEEK_BEFORE, asset_event, context, extra, snapshot, store

KEY = "weekly|2026-11-22T09:00:00Z"
CONN_ENV = "AIRFLOW_CONN_" + contract.SLACK_CONN_ID.upper()


@pytest.fixture()
def sink(tmp_path):
    from dev.stack import slack_sink

    server = slack_sink.start(tmp_path / "slack")
    yield server
    server.stop()


@pytest.fixture()
def env(monkeypatch, metrics_db, metrics_conn, sink):
    for key, value in {"DB_HOST": metrics_db.host, "DB_PORT": str(metrics_db.port),
                       "DB_NAME": metrics_db.dbname, "DB_USER": metrics_db.user or "",
                       "INVESTOR_TIMEZONE": "UTC"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "slackwebhook", "password": sink.webhook_url}))
    store(metrics_conn, snapshot(WEEK_BEFORE, mrr=30820.0, active=115))
    store(metrics_conn, snapshot(alerts=[ALERT]))
    return metrics_conn


def posted(sink) -> list[dict]:
    from dev.stack import slack_sink

    return [m["payload"] for m in slack_sink.messages(sink.folder)]


def test_a_scheduled_week_is_posted_once(env, sink):
    result = post_snapshot_updates(context(asset_event(extra())))
    assert result == {"posted": [KEY], "already_posted": [], "skipped": {}}
    [payload] = posted(sink)
    assert payload["text"].startswith("ChatterFix investor metrics — Week ending 22 Nov 2026: MRR $32,110 "
                                      "(+$1,290 (+4.2%) vs previous week), 1 alert")
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert "*Active customers*\n118\n_+3 (+2.6%)_" in fields
    assert "&lt;api&gt; &amp; friends" in payload["blocks"][4]["text"]["text"]
    assert sink.calls[0]["path"].startswith("/services/")
    status = send_status(env, KIND_SLACK_UPDATE, KEY)
    assert status["status"] == "sent" and status["sent_to"] == [contract.SLACK_CONN_ID]
    assert status["rows"][contract.SLACK_CONN_ID]["smtp_code"] == 200  # the HTTP status

    # a rerun, a cleared task, a second event of the same week: the send log says it was posted
    again = post_snapshot_updates(context(asset_event(extra()), run_id="asset_triggered__2"))
    assert again["posted"] == [] and again["already_posted"] == [KEY]
    assert len(sink.calls) == 1


def test_a_500_fails_the_attempt_and_the_retry_posts_once(env, sink):
    sink.answers = [500]
    ctx = context(asset_event(extra()))
    with pytest.raises(SlackDeliveryError, match="HTTP 500"):
        post_snapshot_updates(ctx)
    row = send_status(env, KIND_SLACK_UPDATE, KEY)["rows"][contract.SLACK_CONN_ID]
    assert (row["status"], row["smtp_code"], row["attempts"]) == ("deferred", 500, 1)
    assert posted(sink) == []
    assert post_snapshot_updates(ctx)["posted"] == [KEY]  # the task's retry
    assert [c["status"] for c in sink.calls] == [500, 200]
    assert len(posted(sink)) == 1
    assert post_snapshot_updates(ctx)["already_posted"] == [KEY]
    assert len(sink.calls) == 2


def test_a_4xx_fails_at_once_and_a_clear_after_the_fix_posts(env, sink):
    sink.answers = [404]
    with pytest.raises(AirflowFailException, match="fix the webhook URL"):
        post_snapshot_updates(context(asset_event(extra())))
    assert send_status(env, KIND_SLACK_UPDATE, KEY)["status"] == "deferred"
    assert post_snapshot_updates(context(asset_event(extra())))["posted"] == [KEY]


def test_backfill_weeks_are_never_posted(env, sink):
    with pytest.raises(AirflowSkipException, match="backfill week is never announced"):
        post_snapshot_updates(context(asset_event(extra(period_type="backfill")),
                                      asset_event(extra(WEEK_BEFORE, period_type="backfill"), minute=1)))
    assert sink.calls == [] and send_status(env, KIND_SLACK_UPDATE, KEY) is None


def test_events_gathered_in_one_run_post_only_the_announced_ones(env, sink):
    events = (asset_event(extra(WEEK_BEFORE, period_type="backfill"), minute=0),
              asset_event(extra(announce=True), minute=2),
              asset_event({"note": "created by hand"}, minute=1),
              asset_event(extra(period_type="on_demand", announce=False), minute=3))
    result = post_snapshot_updates(context(*events))
    assert result["posted"] == [KEY]
    assert sorted(result["skipped"].values()) == [
        "a backfill week is never announced", "its run sent no e-mail (on_demand, announce=false)",
        "not a snapshot event"]
    assert len(posted(sink)) == 1


def test_no_connection_skips_with_a_message(env, sink, monkeypatch):
    monkeypatch.delenv(CONN_ENV)
    with pytest.raises(AirflowSkipException, match="no Airflow connection 'slack_investor_updates'"):
        post_snapshot_updates(context(asset_event(extra())))
    assert sink.calls == []


def test_a_missing_snapshot_fails_for_the_retry(env, sink):
    with pytest.raises(LookupError, match="holds no weekly snapshot"):
        post_snapshot_updates(context(asset_event(extra(END.replace(day=29)))))
    assert sink.calls == []
