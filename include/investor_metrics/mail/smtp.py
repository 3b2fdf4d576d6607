"""Talking to the SMTP server: the connection, and one SMTP transaction per recipient.

**Connection.** The Airflow connection ``smtp_default`` (``INVESTOR_SMTP_CONN_ID``), when it is set
the Airflow way (UI, ``AIRFLOW_CONN_SMTP_DEFAULT``, a secrets backend), wins. Otherwise one is built
from the seed's variables: ``SMTP_SERVER``, ``SMTP_PORT`` (587), ``INVESTOR_EMAIL`` (sender and
login), ``EMAIL_PASSWORD``, ``SMTP_STARTTLS`` (true), ``SMTP_SSL`` (false). Messages go out through
the provider's ``SmtpHook`` (its TLS/SSL/login handling), handed that resolved connection. SMTP
replies time out after ``INVESTOR_SMTP_TIMEOUT_SECONDS`` (default 30).

**Transactions.** ``SmtpSession.transmit`` runs MAIL/RCPT/DATA for one recipient and returns an
``Outcome`` (``sent``, ``refused``, ``deferred``, ``unknown``); it never raises for an SMTP or
network error. Recording outcomes is ``send_log``'s job, sending exactly once ``send``'s.

The password never appears in a log line or an exception text (errors are redacted), and no
connection object is ever logged (an ``airflow.sdk.Connection`` repr shows its password).
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from functools import lru_cache

from include.investor_metrics.settings import (
    SMTP_CONN_ID,
    ConfigError,
    number_setting,
    parse_address_list,
    smtp_settings_from_env,
)

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30  # INVESTOR_SMTP_TIMEOUT_SECONDS
SMTP_CONNECT_RETRIES = 2  # the hook's retries of a dropped connection; Airflow retries the task on top


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
        "timeout": smtp_timeout_seconds(env),
        "retry_limit": SMTP_CONNECT_RETRIES,
    }
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
    return (f"{connection.host}:{connection.port} (connection {connection.conn_id!r}, "
            f"SSL {'on' if ssl else 'off'}, "
            f"STARTTLS {'on' if starttls else 'off'}, {login})")


def sender_address(connection=None, *, env: Mapping[str, str] | None = None) -> str:
    """The From address: the connection's ``from_email`` extra, else ``INVESTOR_EMAIL``."""
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


def smtp_timeout_seconds(env: Mapping[str, str] | None = None) -> int:
    """``INVESTOR_SMTP_TIMEOUT_SECONDS`` (default 30): the socket timeout of each SMTP reply."""
    return int(number_setting("INVESTOR_SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS, integer=True,
                                minimum=1, env=env))


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (the SMTP password) replaced by ``***``."""
    return text.replace(secret, "***") if secret else text


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The distinct addresses of the message's To/Cc/Bcc headers, in order."""
    headers = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    seen, out = set(), []
    for _name, address in getaddresses(headers):
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


@dataclass
class Outcome:
    """What one recipient's SMTP transaction came to: ``sent``, ``deferred`` (4xx, or no SMTP
    conversation: retry), ``refused`` (5xx to RCPT: permanent), ``unknown`` (the link failed after
    the data went out). ``broken``: the connection is unusable for the next recipient."""

    recipient: str
    status: str
    code: int | None = None
    detail: str = ""
    broken: bool = False


def _reply_text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _payload(message: EmailMessage) -> bytes:
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    data = re.sub(rb"(?m)^\.", b"..", data)  # RFC 5321 dot-stuffing
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSession:
    """One SMTP connection (through the provider's hook: TLS, login, retries of a dropped connect),
    opened at the first transaction, used for one transaction per recipient."""

    def __init__(self, connection):
        self.connection = connection
        self.secret = connection.password
        self._hook = None

    def _client(self):
        if self._hook is None:
            hook = smtp_hook(self.connection)
            self._hook = hook
            hook.get_conn()  # connects, STARTTLS/SSL as configured, logs in
        return self._hook._smtp_client

    def _describe(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", self.secret)

    def transmit(self, message: EmailMessage, from_addr: str, recipient: str) -> Outcome:
        """MAIL, RCPT, DATA for ``recipient`` alone. Never raises for an SMTP or network error."""
        try:
            client = self._client()
        except Exception as exc:
            self.close()
            return Outcome(recipient, "deferred", getattr(exc, "smtp_code", None),
                           f"no SMTP session: {self._describe(exc)}", broken=True)
        data_sent = False
        try:
            client.ehlo_or_helo_if_needed()
            code, reply = client.mail(from_addr)
            if code != 250:
                client.rset()
                return Outcome(recipient, "deferred", code, f"MAIL FROM refused: {code} {_reply_text(reply)}")
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                client.rset()
                status = "refused" if 500 <= code < 600 else "deferred"
                return Outcome(recipient, status, code, f"RCPT TO refused: {code} {_reply_text(reply)}")
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                client.rset()
                return Outcome(recipient, "deferred", code, f"DATA refused: {code} {_reply_text(reply)}")
            data_sent = True
            client.send(_payload(message))
            code, reply = client.getreply()
            if code != 250:
                # The message itself was turned down (not the address): a failure of the attempt.
                return Outcome(recipient, "deferred", code, f"message rejected: {code} {_reply_text(reply)}")
            return Outcome(recipient, "sent", code, _reply_text(reply))
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            status = "unknown" if data_sent else "deferred"
            return Outcome(recipient, status, getattr(exc, "smtp_code", None), self._describe(exc),
                           broken=True)

    def close(self) -> None:
        hook, self._hook = self._hook, None
        client = getattr(hook, "_smtp_client", None) if hook is not None else None
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


def deliver(message: EmailMessage, recipient: str, connection=None) -> Outcome:
    """Hand ``message`` to the SMTP server for ``recipient`` alone (no send log: see ``send_once``);
    the message is re-addressed to that recipient first."""
    connection = connection if connection is not None else smtp_connection()
    from_addr = parseaddr(str(message["From"]))[1]
    if not from_addr or not recipient:
        raise ValueError("the message has no From or no recipient")
    del message["To"]
    message["To"] = recipient
    session = SmtpSession(connection)
    try:
        return session.transmit(message, from_addr, recipient)
    finally:
        session.close()

