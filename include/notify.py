"""Sending the investor e-mails through SMTP, exactly once (SPEC section 8).

**Connection.** The Airflow connection ``smtp_default`` (``INVESTOR_SMTP_CONN_ID``), when it is set
the Airflow way (UI, ``AIRFLOW_CONN_SMTP_DEFAULT``, a secrets backend), wins. Otherwise one is built
from the seed's variables: ``SMTP_SERVER``, ``SMTP_PORT`` (587), ``INVESTOR_EMAIL`` (sender and
login), ``EMAIL_PASSWORD``, ``SMTP_STARTTLS`` (true), ``SMTP_SSL`` (false). Messages go out through
the provider's ``SmtpHook`` (its TLS/SSL/login handling), handed that resolved connection.

**Exactly once** (``send_once``), per (kind, key) in ``investor_metrics.send_log``:

1. ``INSERT (kind, send_key) ... ON CONFLICT DO NOTHING`` claims the row;
2. ``SELECT status ... FOR UPDATE`` locks it for the whole SMTP conversation: a concurrent sender of
   the same key waits (on step 1) until this transaction ends, then sees ``sent``;
3. already ``sent`` → commit, send nothing, return False;
4. otherwise send; the server accepted → ``UPDATE status = 'sent'`` and COMMIT, return True.

Any SMTP error rolls the transaction back (nothing is marked sent) and raises ``EmailDeliveryError``:
the Airflow task fails and its retry sends the message. The one window left: the process dies (or
the database goes away) after the SMTP server accepted the message and before the COMMIT; the retry
then sends it again. That copy carries the same Message-ID (derived from kind and key, in the
sender's domain), so mail clients that de-duplicate drop it. Two-phase commit with an SMTP server
does not exist; this is the smallest window SMTP allows.

The password never appears in a log line or an exception text: exceptions are re-raised with it
redacted (and without the original chained when that one contains it), and no connection object is
ever logged (an ``airflow.sdk.Connection`` repr shows its password).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from functools import lru_cache

from include import email_report
from include.config import (
    SMTP_CONN_ID,
    ConfigError,
    data_team_recipients,
    investor_recipients,
    parse_address_list,
    smtp_settings_from_env,
)
from include.db import read_sql
from include.email_report import (
    KIND_ALERT,
    KIND_DATA_QUALITY_FAILURE,
    KIND_WEEKLY_SUMMARY,
    message_id,
)
from include.period import iso_utc

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
SMTP_CONNECT_RETRIES = 2  # the hook's retries of a dropped connection; Airflow retries the task on top


class EmailDeliveryError(RuntimeError):
    """The SMTP server did not take the message (nothing was marked sent; a retry may send it)."""


# --------------------------------------------------------------------------- connection
def smtp_connection(conn_id: str = SMTP_CONN_ID, *, env: Mapping[str, str] | None = None):
    """The SMTP connection to use, as an ``airflow.sdk.Connection`` (never log it: its repr shows
    the password).

    The Airflow connection ``conn_id`` when it is defined; else one built from the seed's ``SMTP_*``
    variables (``env``, default ``os.environ``). A lookup that fails for another reason than "not
    found" (outside a task there may be no API server or metadata database to ask) also falls back
    to the variables, with a warning; an access denied by a secrets backend does not.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException, AirflowSecretsBackendAccessDenied

    try:
        return Connection.get(conn_id)
    except AirflowSecretsBackendAccessDenied:
        raise  # an authoritative "no": never fall back to other credentials
    except AirflowNotFoundException:
        pass
    except Exception as exc:
        log.warning("could not look up the Airflow connection %r (%s); using the SMTP_* variables",
                    conn_id, type(exc).__name__)
    settings = smtp_settings_from_env(env)
    if settings.password:
        _mask_secret(settings.password)
    extra = {
        "from_email": settings.sender,
        # The hook turns SSL and STARTTLS on unless told otherwise; with SMTP_SSL the connection is
        # encrypted from the start and STARTTLS would fail on it.
        "disable_ssl": not settings.ssl,
        "disable_tls": settings.ssl or not settings.starttls,
        "timeout": SMTP_TIMEOUT_SECONDS,
        "retry_limit": SMTP_CONNECT_RETRIES,
    }
    import json

    return Connection(
        conn_id=conn_id,
        conn_type="smtp",
        host=settings.host,
        port=settings.port,
        login=settings.sender,
        password=settings.password,
        extra=json.dumps({k: v for k, v in extra.items() if v is not None}),
    )


def _mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker (a no-op outside Airflow's logging)."""
    try:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    except Exception:  # pragma: no cover - masking is best effort; we never log it anyway
        pass


def describe_connection(connection) -> str:
    """What may appear in a log line or an error: no password."""
    extra = connection.extra_dejson
    ssl = not extra.get("disable_ssl", False)
    starttls = not ssl and not extra.get("disable_tls", False)
    login = f"login {connection.login}" if connection.login else "no login"
    return (f"{connection.host}:{connection.port} (connection {connection.conn_id!r}, SSL {'on' if ssl else 'off'}, "
            f"STARTTLS {'on' if starttls else 'off'}, {login})")


def sender_address(connection=None, *, env: Mapping[str, str] | None = None) -> str:
    """The From address: the connection's ``from_email`` extra, else ``INVESTOR_EMAIL``."""
    import os

    env = os.environ if env is None else env
    from_email = (connection.extra_dejson.get("from_email") if connection is not None else None) or None
    name = f"the from_email extra of the SMTP connection {getattr(connection, 'conn_id', SMTP_CONN_ID)!r}"
    if not from_email:
        from_email, name = env.get("INVESTOR_EMAIL", "").strip(), "INVESTOR_EMAIL"
    if not from_email:
        raise ConfigError("INVESTOR_EMAIL is not set: it is the sender of the investor e-mails "
                          "(or set from_email in the SMTP connection's extras)")
    address = parseaddr(from_email)[1] or from_email
    parse_address_list(address, name)
    return address


@lru_cache(maxsize=1)
def _hook_class():
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class ResolvedSmtpHook(SmtpHook):
        """The provider's SmtpHook, bound to a connection resolved beforehand (the Airflow one or
        the one built from the seed's variables, which no Airflow lookup by id would find)."""

        def __init__(self, connection, **kwargs):
            super().__init__(smtp_conn_id=connection.conn_id, **kwargs)
            self._resolved_connection = connection

        def get_connection(self, conn_id):  # the hook asks by id; the answer is already known
            return self._resolved_connection

        async def aget_connection(self, conn_id):
            return self._resolved_connection

    return ResolvedSmtpHook


def smtp_hook(connection=None):
    """An ``SmtpHook`` on ``connection`` (default ``smtp_connection()``); ``get_conn()`` logs in."""
    return _hook_class()(connection if connection is not None else smtp_connection())


# --------------------------------------------------------------------------- delivery
def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _mentions(exc: BaseException, secret: str | None) -> bool:
    """Does ``exc`` or anything chained to it show ``secret``?"""
    seen = set()
    while secret and exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if secret in str(exc) or secret in repr(exc.args):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _close(hook) -> None:
    client = getattr(hook, "_smtp_client", None)
    if client is None:
        return
    try:
        client.quit()
    except Exception:
        try:
            client.close()
        except Exception:
            pass
    hook._smtp_client = None


def envelope_recipients(message: EmailMessage) -> list[str]:
    headers = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return [address for _name, address in getaddresses(headers) if address]


def deliver(message: EmailMessage, connection=None) -> list[str]:
    """Hand ``message`` to the SMTP server once (no send log: see ``send_once``). Returns the
    recipients the server accepted; raises ``EmailDeliveryError`` when it took none."""
    connection = connection if connection is not None else smtp_connection()
    from_addr = parseaddr(str(message["From"]))[1]
    to_addrs = envelope_recipients(message)
    if not from_addr or not to_addrs:
        raise ValueError("the message has no From or no recipient")
    secret = connection.password
    hook = smtp_hook(connection)
    try:
        hook.get_conn()  # connects, STARTTLS/SSL as configured, logs in
        # The hook builds only its own MIME layout; our message goes through its smtplib client.
        client = hook._smtp_client
        refused = client.send_message(message, from_addr=from_addr, to_addrs=to_addrs)
    except Exception as exc:
        detail = _redact(f"{type(exc).__name__}: {exc}", secret)
        error = EmailDeliveryError(
            f"could not send {str(message['Subject'])!r} to {len(to_addrs)} recipient(s) through "
            f"{describe_connection(connection)}: {detail}"
        )
        if _mentions(exc, secret):
            raise error from None
        raise error from exc
    finally:
        _close(hook)
    if refused:
        # Others did receive it: resending would duplicate their copy, so this is not a failure.
        log.warning("the SMTP server refused %d of %d recipient(s): %s", len(refused), len(to_addrs),
                    ", ".join(sorted(refused)))
    return [address for address in to_addrs if address not in refused]


def _stamp(message: EmailMessage, kind: str, key: str) -> str:
    """Give the message the Message-ID of its exactly-once key and the Date of its sending."""
    mid = message_id(kind, key, parseaddr(str(message["From"]))[1])
    del message["Message-ID"]
    message["Message-ID"] = mid
    del message["Date"]
    message["Date"] = formatdate(usegmt=True)
    return mid


def _rollback(conn) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the transaction is then gone with it
        log.warning("rollback of the send-log transaction failed", exc_info=True)


def send_once(metrics_conn, *, kind: str, key: str, message: EmailMessage, run_id: str | None,
              smtp_conn=None) -> bool:
    """Send ``message`` unless the send log says (kind, key) was sent; True if sent now.

    ``metrics_conn``: a psycopg2 or psycopg 3 connection to the metrics store (e.g. from
    ``PostgresHook.get_conn()``), with no uncommitted work of its own: this function commits.
    ``message`` gets the Message-ID derived from (kind, key) and a fresh Date header.
    Raises ``EmailDeliveryError`` on an SMTP failure, with nothing marked sent.
    """
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()  # config errors first
    params = {"kind": kind, "send_key": key}
    autocommit = bool(getattr(metrics_conn, "autocommit", False))
    if autocommit:  # the row lock must live across the SMTP conversation: one transaction
        metrics_conn.autocommit = False
    accepted_by_smtp = False
    try:
        with metrics_conn.cursor() as cur:
            cur.execute(read_sql("send_log_claim.sql"), params)
            cur.execute(read_sql("send_log_lock.sql"), params)
            (status,) = cur.fetchone()
            if status == "sent":
                metrics_conn.commit()
                log.info("%s %r was already sent: not sending it again", kind, key)
                return False
            mid = _stamp(message, kind, key)
            recipients = deliver(message, smtp_conn)
            accepted_by_smtp = True
            cur.execute(read_sql("send_log_mark_sent.sql"), {
                **params,
                "recipients": recipients,
                "subject": str(message["Subject"]),
                "message_id": mid,
                "run_id": run_id,
            })
        metrics_conn.commit()
    except BaseException:
        _rollback(metrics_conn)
        if accepted_by_smtp:
            log.error("%s %r was accepted by the SMTP server but could not be recorded as sent: a retry "
                      "will send it again, with the same Message-ID, which lets mail clients drop it",
                      kind, key)
        raise
    finally:
        if autocommit:
            try:
                metrics_conn.autocommit = True
            except Exception:
                pass
    log.info("sent %s %r (Message-ID %s) to %d recipient(s) through %s", kind, key, mid, len(recipients),
             describe_connection(smtp_conn))
    return True


def send_status(metrics_conn, kind: str, key: str) -> dict | None:
    """The send-log row of (kind, key) as a dict, or None when no attempt is recorded."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log_status.sql"), {"kind": kind, "send_key": key})
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
    return dict(zip(names, row, strict=True)) if row else None


# --------------------------------------------------------------------------- the three sends
def send_weekly_summary(metrics_conn, snapshot: Mapping, *, previous: Mapping | None, history: Iterable[Mapping],
                        run_id: str | None, airflow_url: str | None = None, recipients=None, tz=None,
                        smtp_conn=None) -> bool:
    """Build and send the period's summary to ``INVESTOR_EMAILS`` once; True if sent now."""
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    message = email_report.build_weekly_summary(
        snapshot, previous=previous, history=history,
        recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    return send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY, key=email_report.weekly_summary_key(snapshot),
                     message=message, run_id=run_id, smtp_conn=smtp_conn)


def send_alert_notifications(metrics_conn, alerts: Iterable[Mapping], *, run_id: str | None,
                             airflow_url: str | None = None, recipients=None, tz=None, smtp_conn=None) -> list[str]:
    """E-mail each critical and high alert on its own message, once per alert id; returns the ids
    sent now (the caller may mark those alerts ``notified``)."""
    urgent = email_report.urgent_alerts(alerts)
    if not urgent:
        return []
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    messages = email_report.build_alert_messages(
        urgent, recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    return [alert_id for alert_id, message in messages
            if send_once(metrics_conn, kind=KIND_ALERT, key=alert_id, message=message, run_id=run_id,
                         smtp_conn=smtp_conn)]


def send_data_quality_failure(metrics_conn, message_text: str, *, report_path: str | None, period,
                              run_id: str | None, recipients=None, tz=None, smtp_conn=None) -> bool:
    """For the validation failure callback: e-mail ``DATA_TEAM_EMAILS`` (never the investors), once
    per (period, run). Returns False without sending when no data-team address is configured."""
    recipients = recipients if recipients is not None else data_team_recipients()
    if not recipients:
        log.info("DATA_TEAM_EMAILS is not set: no data-quality failure e-mail")
        return False
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    message = email_report.build_data_quality_failure(
        message_text, report_path=report_path, period=period, recipients=recipients,
        sender=sender_address(smtp_conn), tz=tz,
    )
    _start, end = email_report.period_bounds(period)
    key = f"{iso_utc(end)}/{run_id or '-'}"
    return send_once(metrics_conn, kind=KIND_DATA_QUALITY_FAILURE, key=key, message=message, run_id=run_id,
                     smtp_conn=smtp_conn)
