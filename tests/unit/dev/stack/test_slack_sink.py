"""The demo's Slack webhook sink, and the demo's connection pointing the Slack provider at it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from dev.stack import slack_sink
from dev.stack.env import SLACK_CONN_ENV, Stack
from tests.conftest import free_port


def post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_sink_keeps_each_posted_message_and_answers_as_slack(tmp_path):
    sink = slack_sink.start(tmp_path / "slack", port=free_port())
    try:
        assert post(sink.webhook_url, b'{"text": "one"}') == (200, "ok")
        assert post(sink.webhook_url, b"not json") == (400, "invalid_payload")
        sink.answers = [500]
        assert post(sink.webhook_url, b'{"text": "two"}') == (500, "internal_error")
        assert post(sink.webhook_url, json.dumps({"text": "three <&>"}).encode()) == (200, "ok")
    finally:
        sink.stop()
    kept = slack_sink.messages(tmp_path / "slack")
    assert [m["payload"]["text"] for m in kept] == ["one", "three <&>"]
    assert [c["status"] for c in sink.calls] == [200, 400, 500, 200]
    assert not list((tmp_path / "slack").glob(".*.tmp"))


def test_the_demo_connection_points_the_slack_provider_at_the_sink(tmp_path, monkeypatch):
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    port = free_port()
    stack = Stack({"CFX_STATE_DIR": str(tmp_path / "state"), "DEMO_SLACK_PORT": str(port)})
    env = stack.airflow_env()
    assert json.loads(env[SLACK_CONN_ENV]) == {"conn_type": "slackwebhook",
                                               "password": f"http://127.0.0.1:{port}{slack_sink.WEBHOOK_PATH}"}
    assert stack.slack_dir == (tmp_path / "state" / "slack").resolve()
    monkeypatch.setenv(SLACK_CONN_ENV, env[SLACK_CONN_ENV])
    sink = slack_sink.start(stack.slack_dir, port=port)
    try:
        SlackWebhookHook(slack_webhook_conn_id="slack_investor_updates").send_text("hello from the demo")
    finally:
        sink.stop()
    assert [m["payload"] for m in slack_sink.messages(stack.slack_dir)] == [{"text": "hello from the demo"}]


@pytest.mark.parametrize("own", ['{"conn_type": "slackwebhook", "password": "https://hooks.slack.com/x"}'])
def test_a_connection_set_by_the_user_is_kept(tmp_path, own):
    stack = Stack({"CFX_STATE_DIR": str(tmp_path), SLACK_CONN_ENV: own})
    assert stack.airflow_env()[SLACK_CONN_ENV] == own
