"""Posting one Slack update exactly once, through the Slack provider's ``SlackWebhookHook`` and the
send log (``include/investor_metrics/mail/send_log.py``; docs/adr/exactly-once-email.md).

The send-log row is (kind ``slack_update``, key ``<series>|<period end>``, recipient: the Slack
connection id); its lease is taken and committed before the POST, its outcome recorded after it
(``smtp_code`` holds the HTTP status). A row ``sent`` is never posted again (a rerun or a cleared
task logs it and succeeds). Outcomes of one POST:

- 200: ``sent``;
- 429 (rate limited): the provider's client waits ``Retry-After`` and retries up to twice, then as 5xx;
- 5xx, or no connection to the webhook: ``deferred``, ``SlackDeliveryError`` (the task's retry posts);
- other 4xx (a revoked webhook, an archived channel, a bad payload): ``deferred``, ``SlackRefusedError``
  (no retry can fix it; fix the connection and clear the task);
- the request went out but no answer came (timeout, connection dropped): ``unknown``,
  ``SlackDeliveryError``; the retry posts again with a warning — Slack's webhooks have no
  idempotency key, so this one case can show the message twice rather than never.
"""

from __future__ import annotations

import logging
import urllib.error
from collections.abc import Mapping

from include.investor_metrics.mail.send_log import (
    EmailDeliveryError,
    SendLog,
    lease_owner,
    out_of_autocommit,
    send_lease_seconds,
    send_lock_timeout_seconds,
)
from include.investor_metrics.mail.smtp import Outcome
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import number_setting

log = logging.getLogger(__name__)

KIND_SLACK_UPDATE = "slack_update"
SLACK_TIMEOUT_SECONDS = 30.0  # INVESTOR_SLACK_TIMEOUT_SECONDS
RATE_LIMIT_RETRIES = 2


class SlackDeliveryError(RuntimeError):
    """The update is still owed (a 5xx, no connection, an unknown outcome): the task's retry posts it."""


class SlackRefusedError(RuntimeError):
    """Slack refused the update for good (a 4xx other than 429): retrying cannot fix it."""


def slack_timeout_seconds(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_SLACK_TIMEOUT_SECONDS`` (default 30): the longest wait to connect to the webhook
    and for its answer (below the send-log lease, ``INVESTOR_SEND_LEASE_SECONDS``)."""
    return number_setting("INVESTOR_SLACK_TIMEOUT_SECONDS", SLACK_TIMEOUT_SECONDS, minimum=0.1, env=env)


def slack_update_key(series: str, period_end) -> str:
    """The send-log key of a period's update: ``weekly|2026-11-22T09:00:00Z``."""
    return f"{series}|{iso_utc(period_end)}"


def webhook_hook(conn_id: str, timeout: float):
    """The provider's hook on ``conn_id``, retrying only what is sure not to have posted (429)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    # Not the client's default ConnectionErrorRetryHandler: it also resends after a connection
    # dropped mid-answer, which may post twice; the send log decides about resending instead.
    return SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=max(1, round(timeout)),
                            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)])


def transmit(hook, payload: dict, target: str) -> Outcome:
    """POST ``payload`` once (the client may retry a 429); the outcome, never an exception for an
    HTTP or network failure."""
    try:
        response = hook.client.send_dict(payload)
    except urllib.error.URLError as exc:  # before an answer could be read: connect or send failed
        return Outcome(target, "deferred", detail=f"no connection to the webhook: {exc.reason}")
    except (TimeoutError, ConnectionError, OSError) as exc:
        return Outcome(target, "unknown", detail=f"sent, but no answer: {type(exc).__name__}: {exc}")
    body = str(response.body or "")[:300]
    if response.status_code == 200:
        return Outcome(target, "sent", code=200, detail=body)
    status = response.status_code
    return Outcome(target, "deferred", code=status, detail=f"HTTP {status}: {body}")


def post_once(metrics_conn, *, conn_id: str, key: str, payload: dict, period_end, run_id: str | None,
              hook=None) -> bool:
    """Post ``payload`` to the webhook of connection ``conn_id`` unless the send log says the update
    ``key`` was posted already. True when posted now, False when it had been; raises
    ``SlackDeliveryError`` / ``SlackRefusedError`` when not posted (module docstring)."""
    timeout = slack_timeout_seconds()
    lease = send_lease_seconds()
    if lease <= timeout:
        from include.investor_metrics.settings import ConfigError

        raise ConfigError(f"INVESTOR_SEND_LEASE_SECONDS ({lease:g}) must exceed "
                          f"INVESTOR_SLACK_TIMEOUT_SECONDS ({timeout:g})")
    hook = hook if hook is not None else webhook_hook(conn_id, timeout)
    hook.client  # noqa: B018 - the connection's webhook URL is read (and refused) before any lease
    sendlog = SendLog(metrics_conn, KIND_SLACK_UPDATE, key, owner=lease_owner(run_id), lease_seconds=lease,
                      lock_timeout=send_lock_timeout_seconds())
    with out_of_autocommit(metrics_conn):
        try:
            sendlog.insert([conn_id], period_end)
            claimed, busy = sendlog.claim([conn_id])
        except EmailDeliveryError as exc:  # a stuck session holds the row
            raise SlackDeliveryError(str(exc)) from exc
        if not claimed:
            if busy:
                row = busy[0]
                raise SlackDeliveryError(f"Slack update {key!r}: another sender ({row['lease_owner']}) holds "
                                         f"the send-log lease until {row['lease_expires_at']}; a retry "
                                         "finishes it")
            log.info("Slack update %r was posted already (send log): not posting it again", key)
            return False
        if claimed[conn_id] in ("unknown", "sending"):
            log.warning("Slack update %r: the last attempt's outcome is unknown (the request went out, no "
                        "answer came); posting again, which may show it twice in the channel", key)
        outcome = transmit(hook, payload, conn_id)
        if not sendlog.record(outcome, subject=payload.get("text", "")[:300], run_id=run_id):
            log.warning("Slack update %r: this sender's lease was taken over before it recorded %s",
                        key, outcome.status)
    if outcome.status == "sent":
        log.info("posted Slack update %r through connection %s", key, conn_id)
        return True
    where = f"Slack update {key!r} through connection {conn_id}"
    if outcome.code is not None and 400 <= outcome.code < 500 and outcome.code != 429:
        raise SlackRefusedError(f"{where}: the webhook refused it ({outcome.detail}); fix the webhook URL "
                                f"in connection {conn_id!r} (a revoked webhook, an archived channel), "
                                "then clear the task")
    raise SlackDeliveryError(f"{where}: not posted ({outcome.status}: {outcome.detail}); "
                             "the task's retry posts it")
