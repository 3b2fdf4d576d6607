"""Sending the investor e-mails through SMTP, exactly once (SPEC section 8).

**Connection.** The Airflow connection ``smtp_default`` (``INVESTOR_SMTP_CONN_ID``), when it is set
the Airflow way (UI, ``AIRFLOW_CONN_SMTP_DEFAULT``, a secrets backend), wins. Otherwise one is built
from the seed's variables: ``SMTP_SERVER``, ``SMTP_PORT`` (587), ``INVESTOR_EMAIL`` (sender and
login), ``EMAIL_PASSWORD``, ``SMTP_STARTTLS`` (true), ``SMTP_SSL`` (false). Messages go out through
the provider's ``SmtpHook`` (its TLS/SSL/login handling), handed that resolved connection.

**Per recipient, exactly once** (``send_once``): each recipient gets a message of their own (its
own ``To:`` and a Message-ID derived from kind, key and recipient: no recipient sees another's
address), in one SMTP transaction of its own. ``investor_metrics.send_log`` has a row per
(kind, key, recipient):

1. the rows are inserted (``pending``) and committed;
2. a **lease** is taken on every row not done (``sending``, ``lease_owner`` = run|host|pid|token,
   ``lease_expires_at`` = now + ``INVESTOR_SEND_LEASE_SECONDS``, default 300) and committed BEFORE
   any SMTP: no database lock is held across the SMTP conversation, and every send-log statement
   runs under ``lock_timeout`` (``INVESTOR_SEND_LOCK_TIMEOUT_SECONDS``, default 10) and
   ``statement_timeout``, so a stuck database session gives a clear error, never a hang;
3. per recipient (the lease renewed first), MAIL/RCPT/DATA, then the outcome is recorded in a
   transaction of its own: ``sent``; ``refused`` (5xx to RCPT: permanent, reported to
   ``DATA_TEAM_EMAILS``, does not block the others); ``deferred`` (4xx, no SMTP session, message
   rejected: the task fails, its retry sends to the deferred ones only); ``unknown`` (the link
   dropped or timed out after the data went out: reported, the task fails, the retry resends once
   with the same Message-ID so mail systems drop the copy);
4. a concurrent sender that finds a live lease waits (up to twice the lease) and then finds the rows
   done; a lease that expired means its holder vanished mid-send: it is taken over as ``unknown``.

SMTP replies time out after ``INVESTOR_SMTP_TIMEOUT_SECONDS`` (default 30). The one window left:
an outcome the client cannot know (the server took the data and its reply never came, or the
process died mid-send): the message may then reach that recipient twice, with the same Message-ID,
and the data team is told. ``owed`` / ``owed_alerts`` list what earlier runs still owe (rows not
delivered, problems not reported), for the e-mail tasks' sweep of the last ``INVESTOR_OWED_EMAIL_WEEKS``.

The password never appears in a log line or an exception text: exceptions are re-raised with it
redacted (and without the original chained when that one contains it), and no connection object is
ever logged (an ``airflow.sdk.Connection`` repr shows its password).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr
from functools import lru_cache

from include.investor_metrics.db import read_sql
from include.investor_metrics.mail import message as email_report
from include.investor_metrics.mail.message import (
    KIND_ALERT,
    KIND_DATA_QUALITY_FAILURE,
    KIND_DELIVERY_REPORT,
    KIND_WEEKLY_SUMMARY,
)
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import (
    SMTP_CONN_ID,
    ConfigError,
    data_team_recipients,
    investor_recipients,
    number_setting,
    parse_address_list,
    smtp_settings_from_env,
)

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30  # INVESTOR_SMTP_TIMEOUT_SECONDS
SMTP_CONNECT_RETRIES = 2  # the hook's retries of a dropped connection; Airflow retries the task on top
SEND_LEASE_SECONDS = 300.0  # INVESTOR_SEND_LEASE_SECONDS
SEND_LOCK_TIMEOUT_SECONDS = 10.0  # INVESTOR_SEND_LOCK_TIMEOUT_SECONDS
OWED_EMAIL_WEEKS = 4  # INVESTOR_OWED_EMAIL_WEEKS
OWED_STATUSES = ("pending", "deferred", "unknown")  # not delivered, to be sent (again)


class EmailDeliveryError(RuntimeError):
    """Some recipient is still owed the message (deferred, or outcome unknown): the task fails and
    its retry sends to those recipients only."""


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
        "timeout": smtp_timeout_seconds(env),
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


# --------------------------------------------------------------------------- settings
def smtp_timeout_seconds(env: Mapping[str, str] | None = None) -> int:
    """``INVESTOR_SMTP_TIMEOUT_SECONDS`` (default 30): the socket timeout of each SMTP reply."""
    return int(number_setting("INVESTOR_SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS, integer=True,
                                minimum=1, env=env))


def send_lease_seconds(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_SEND_LEASE_SECONDS`` (default 300): how long a sender holds a recipient's send-log
    row without renewing it. It is renewed before each SMTP transaction, so it must exceed one
    transaction (connect + reply timeouts); a lease older than that means its holder vanished."""
    return number_setting("INVESTOR_SEND_LEASE_SECONDS", SEND_LEASE_SECONDS, minimum=0.5, env=env)


def send_lock_timeout_seconds(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_SEND_LOCK_TIMEOUT_SECONDS`` (default 10): the longest wait for a send-log row lock
    (held only by short transactions; a longer wait is a stuck database session)."""
    return number_setting("INVESTOR_SEND_LOCK_TIMEOUT_SECONDS", SEND_LOCK_TIMEOUT_SECONDS, minimum=0.1, env=env)


def owed_email_weeks(env: Mapping[str, str] | None = None) -> int:
    """``INVESTOR_OWED_EMAIL_WEEKS`` (default 4): how many weeks back an e-mail task re-sends what an
    earlier run still owes (0 = only its own period)."""
    return int(number_setting("INVESTOR_OWED_EMAIL_WEEKS", OWED_EMAIL_WEEKS, integer=True, env=env))


# --------------------------------------------------------------------------- SMTP transactions
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
        return _redact(f"{type(exc).__name__}: {exc}", self.secret)

    def transmit(self, message: EmailMessage, from_addr: str, recipient: str) -> Outcome:
        """MAIL, RCPT, DATA for ``recipient`` alone. Never raises for an SMTP or network error."""
        import smtplib

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
            return Outcome(recipient, status, getattr(exc, "smtp_code", None), self._describe(exc), broken=True)

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


# --------------------------------------------------------------------------- the send log
def _rollback(conn) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the transaction is then gone with it
        log.warning("rollback of the send-log transaction failed", exc_info=True)


def _rows(cur) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class SendLog:
    """The send-log rows of one e-mail (kind, key), each statement in a short transaction of its own
    with ``lock_timeout`` and ``statement_timeout`` set: nothing is locked across SMTP."""

    def __init__(self, conn, kind: str, key: str, *, owner: str, lease_seconds: float, lock_timeout: float):
        self.conn, self.kind, self.key, self.owner = conn, kind, key, owner
        self.lease_seconds = lease_seconds
        self.timeouts = {"lock_timeout": f"{int(lock_timeout * 1000)}ms",
                         "statement_timeout": f"{int(max(30.0, 3 * lock_timeout) * 1000)}ms"}

    @contextmanager
    def transaction(self):
        try:
            with self.conn.cursor() as cur:
                cur.execute(read_sql("send_log_settings.sql"), self.timeouts)
                yield cur
            self.conn.commit()
        except BaseException as exc:
            _rollback(self.conn)
            if _is_lock_timeout(exc):
                raise EmailDeliveryError(
                    f"the send-log rows of {self.kind} {self.key!r} stayed locked by another database "
                    f"session for more than {self.timeouts['lock_timeout']} (INVESTOR_SEND_LOCK_TIMEOUT_SECONDS): "
                    f"a stuck session holds them (see pg_stat_activity / pg_locks on investor_metrics.send_log); "
                    f"nothing was sent by this attempt") from exc
            raise

    def _params(self, **extra) -> dict:
        return {"kind": self.kind, "send_key": self.key, "owner": self.owner,
                "lease_seconds": float(self.lease_seconds), **extra}

    def insert(self, recipients: list[str], period_end) -> None:
        with self.transaction() as cur:
            cur.execute(read_sql("send_log_claim.sql"), self._params(recipients=recipients, period_end=period_end))

    def claim(self, recipients: list[str]) -> tuple[dict[str, str], list[dict]]:
        """Lease every recipient not done and not leased by a live sender. Returns
        ({recipient: status before the claim}, rows leased by other live senders)."""
        with self.transaction() as cur:
            cur.execute(read_sql("send_log_lock.sql"), self._params(recipients=recipients))
            rows = _rows(cur)
            claimable = {r["recipient"]: r["status"] for r in rows
                         if r["status"] in OWED_STATUSES or (r["status"] == "sending" and r["lease_expired"])}
            busy = [r for r in rows if r["status"] == "sending" and not r["lease_expired"]]
            if claimable:
                cur.execute(read_sql("send_log_lease.sql"), self._params(recipients=sorted(claimable)))
        return claimable, busy

    def renew(self) -> set[str]:
        with self.transaction() as cur:
            cur.execute(read_sql("send_log_renew.sql"), self._params())
            return {row["recipient"] for row in _rows(cur)}

    def record(self, outcome: Outcome, *, subject=None, message_id=None, run_id=None, status=None,
               recipients: list[str] | None = None, on_complete=None) -> bool:
        """Record one recipient's outcome; when this completes the e-mail (every recipient sent or
        refused, one at least sent), run ``on_complete(conn)`` in the same transaction."""
        with self.transaction() as cur:
            cur.execute(read_sql("send_log_record.sql"), self._params(
                recipient=outcome.recipient, status=status or outcome.status,
                new_unknown=(status or outcome.status) == "unknown" and status is None,
                smtp_code=outcome.code, error=None if outcome.status == "sent" else outcome.detail[:2000],
                subject=subject, message_id=message_id, run_id=run_id,
            ))
            recorded = bool(_rows(cur))
            if recorded and on_complete is not None and recipients and self._complete(cur, recipients):
                on_complete(self.conn)
        return recorded

    def _complete(self, cur, recipients: list[str]) -> bool:
        cur.execute(read_sql("send_log_progress.sql"), self._params(recipients=recipients))
        row = cur.fetchone()
        total, final, sent = (row["total"], row["final"], row["sent"]) if isinstance(row, Mapping) else row
        return total == len(recipients) and final == total and sent > 0

    def complete_now(self, recipients: list[str], on_complete) -> bool:
        """Run ``on_complete`` when the e-mail is complete already (idempotent callers only)."""
        with self.transaction() as cur:
            done = self._complete(cur, recipients)
            if done and on_complete is not None:
                on_complete(self.conn)
        return done


def _is_lock_timeout(exc: BaseException) -> bool:
    return getattr(exc, "pgcode", None) == "55P03" or getattr(getattr(exc, "diag", None), "sqlstate", None) == "55P03"


@contextmanager
def _transactions(conn):
    """psycopg2 / psycopg 3 connection out of autocommit for the duration (restored after)."""
    autocommit = bool(getattr(conn, "autocommit", False))
    if autocommit:
        conn.autocommit = False
    try:
        yield
    finally:
        if autocommit:
            try:
                conn.autocommit = True
            except Exception:
                pass


def _owner(run_id: str | None) -> str:
    import os
    import socket
    import uuid

    return f"{run_id or '-'}|{socket.gethostname()}|pid {os.getpid()}|{uuid.uuid4().hex[:8]}"


def send_once(metrics_conn, *, kind: str, key: str, message: EmailMessage, run_id: str | None,
              smtp_conn=None, period_end=None, on_complete=None, report: bool = True) -> bool:
    """Send ``message`` to each of its recipients (its To/Cc/Bcc) once, each on a message of their
    own; True if any recipient was delivered now.

    Per recipient, a send-log row (kind, key, recipient): leased and committed before SMTP, then the
    outcome recorded in a transaction of its own. Accepted → ``sent``. 5xx to RCPT → ``refused``
    (reported to ``DATA_TEAM_EMAILS``; the others go on; a warning, not a failure). 4xx, no SMTP
    session, a rejected message → ``deferred``, and ``EmailDeliveryError`` once every reachable
    recipient was tried (the retry sends to those only). The link failing after the data went out
    → ``unknown``, reported, and ``EmailDeliveryError``: the retry resends once with the same
    Message-ID (deterministic per kind, key and recipient). A recipient leased by another live
    sender is waited for, up to twice the lease; an expired lease is taken over as ``unknown``.

    ``on_complete(conn)`` runs in the transaction that records the last recipient (or, when the
    e-mail was complete already, in a transaction of its own): e.g. marking an alert notified.
    ``period_end``: the reported period, for the owed-e-mail sweep (``owed``). ``metrics_conn``: a
    psycopg2 or psycopg 3 connection with no uncommitted work of its own: this function commits.
    """
    import time

    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()  # config errors first
    recipients = envelope_recipients(message)
    from_addr = parseaddr(str(message["From"]))[1]
    if not from_addr or not recipients:
        raise ValueError(f"{kind} {key!r}: the message has no From or no recipient")
    lease = send_lease_seconds()
    sendlog = SendLog(metrics_conn, kind, key, owner=_owner(run_id), lease_seconds=lease,
                      lock_timeout=send_lock_timeout_seconds())
    subject = str(message["Subject"])
    message_ids = {}
    outcomes: list[Outcome] = []
    session = SmtpSession(smtp_conn)
    with _transactions(metrics_conn):
        try:
            sendlog.insert(recipients, period_end)
            deadline = time.monotonic() + 2 * lease
            broken = False
            not_attempted: list[str] = []
            while True:
                claimed, busy = sendlog.claim(recipients)
                for recipient in [r for r in recipients if r in claimed]:
                    previous = claimed[recipient]
                    if broken or recipient not in sendlog.renew():
                        if broken:  # not attempted: back to what it was ('sending' = a vanished holder)
                            not_attempted.append(recipient)
                            sendlog.record(Outcome(recipient, previous, detail=f"not attempted: {outcomes[-1].detail}"),
                                           status="unknown" if previous in ("sending", "unknown") else previous)
                        continue
                    if previous in ("unknown", "sending"):
                        log.warning("%s %r to %s: the last attempt's outcome is unknown; resending once with "
                                    "the same Message-ID (the data team is told)", kind, key, recipient)
                    message_ids[recipient] = email_report.address_to(message, kind=kind, key=key, recipient=recipient)
                    del message["Date"]
                    message["Date"] = formatdate(usegmt=True)
                    outcome = session.transmit(message, from_addr, recipient)
                    outcomes.append(outcome)
                    if not sendlog.record(outcome, subject=subject, message_id=message_ids[recipient], run_id=run_id,
                                          recipients=recipients, on_complete=on_complete):
                        log.warning("%s %r to %s: this sender's lease was taken over before it recorded %s",
                                    kind, key, recipient, outcome.status)
                    broken = broken or outcome.broken
                if broken or not busy:
                    break
                if time.monotonic() > deadline:
                    holders = "; ".join(f"{r['recipient']} by {r['lease_owner']} until {r['lease_expires_at']}"
                                        for r in busy)
                    raise EmailDeliveryError(
                        f"{kind} {key!r}: another sender still holds the send-log lease after {2 * lease:g} s "
                        f"(INVESTOR_SEND_LEASE_SECONDS={lease:g}): {holders}; a retry finishes what is left")
                time.sleep(min(0.2, lease / 4))
            if not outcomes and on_complete is not None:
                sendlog.complete_now(recipients, on_complete)
        finally:
            session.close()
            if report and kind != KIND_DELIVERY_REPORT:
                report_delivery_problems(metrics_conn, kind, key, smtp_conn=smtp_conn)
    return _conclude(kind, key, outcomes, smtp_conn, not_attempted)


def _conclude(kind: str, key: str, outcomes: list[Outcome], smtp_conn, not_attempted: list[str]) -> bool:
    sent = [o for o in outcomes if o.status == "sent"]
    refused = [o for o in outcomes if o.status == "refused"]
    unknown = [o for o in outcomes if o.status == "unknown"]
    deferred = [o for o in outcomes if o.status == "deferred"]
    where = describe_connection(smtp_conn)
    if sent:
        log.info("sent %s %r to %d recipient(s) through %s", kind, key, len(sent), where)
    elif not outcomes:
        log.info("%s %r was already sent to every recipient: not sending it again", kind, key)
    if refused:
        log.warning("%s %r: %d recipient(s) permanently refused (reported to DATA_TEAM_EMAILS, not retried): %s; "
                    "the task succeeds for the others", kind, key, len(refused),
                    "; ".join(f"{o.recipient} ({o.detail})" for o in refused))
    if unknown or deferred:
        parts = [f"{o.recipient}: outcome unknown ({o.detail}); the retry resends it with the same Message-ID"
                 for o in unknown]
        parts += [f"{o.recipient}: {o.detail}" for o in deferred]
        if not_attempted:
            parts.append(f"not attempted after that: {', '.join(not_attempted)}")
        owed = len(unknown) + len(deferred) + len(not_attempted)
        raise EmailDeliveryError(
            f"could not send {kind} {key!r} to {owed} recipient(s) through {where}: "
            + "; ".join(parts) + f" (delivered to {len(sent)} now; a retry sends only to those not delivered)") from None
    return bool(sent)


def report_delivery_problems(metrics_conn, kind: str, key: str, *, smtp_conn=None) -> bool:
    """Tell ``DATA_TEAM_EMAILS`` (once, through the send log) of the refused recipients and unknown
    outcomes of (kind, key) not yet reported; True if a report went out now. Never raises: a report
    that cannot go out stays owed (the next attempt at this e-mail, or the owed sweep, retries it)."""
    try:
        with metrics_conn.cursor() as cur:
            cur.execute(read_sql("send_log_unreported.sql"), {"kind": kind, "send_key": key})
            problems = _rows(cur)
        metrics_conn.commit()
        if not problems:
            return False
        for problem in problems:
            log.warning("%s %r to %s: %s (%s)", kind, key, problem["recipient"],
                        "permanently refused" if problem["status"] == "refused" else
                        f"outcome unknown {problem['unknown_outcomes']} time(s)", problem["last_error"])
        team = data_team_recipients()
        if not team:
            log.warning("DATA_TEAM_EMAILS is not set: nobody can be told of the delivery problems of %s %r", kind, key)
            return False
        smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
        events = ",".join(f"{p['recipient']}:{'refused' if p['status'] == 'refused' else ''}"
                          f"{p['unknown_outcomes']}" for p in problems)
        report_key = f"{kind}|{key}|{hashlib.sha256(events.encode()).hexdigest()[:16]}"
        message = email_report.build_delivery_report(
            kind=kind, key=key, report_key=report_key, subject=next((p["subject"] for p in problems if p["subject"]), None),
            problems=problems, recipients=team, sender=sender_address(smtp_conn))

        def mark_reported(conn):
            with conn.cursor() as cur:
                for p in problems:
                    cur.execute(read_sql("send_log_mark_reported.sql"), {
                        "kind": kind, "send_key": key, "recipient": p["recipient"],
                        "refused": p["status"] == "refused", "unknown_outcomes": p["unknown_outcomes"]})

        return send_once(metrics_conn, kind=KIND_DELIVERY_REPORT, key=report_key, message=message, run_id=None,
                         smtp_conn=smtp_conn, on_complete=mark_reported, report=False)
    except Exception as exc:
        _rollback(metrics_conn)
        log.warning("could not tell the data team of the delivery problems of %s %r (%s); it stays owed",
                    kind, key, _redact(f"{type(exc).__name__}: {exc}", getattr(smtp_conn, "password", None)))
        return False


def send_status(metrics_conn, kind: str, key: str) -> dict | None:
    """The send log of (kind, key): ``status`` (``sent`` when every recipient is sent or refused and
    one at least sent; else the first owed status of pending, sending, unknown, deferred, refused),
    ``sent_to`` (recipients delivered), ``rows`` ({recipient: row}); None when nothing is recorded."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log_status.sql"), {"kind": kind, "send_key": key})
        rows = _rows(cur)
    try:
        metrics_conn.commit()
    except Exception:
        pass
    if not rows:
        return None
    statuses = {r["status"] for r in rows}
    if statuses <= {"sent", "refused"} and "sent" in statuses:
        status = "sent"
    else:
        status = next(s for s in ("pending", "sending", "unknown", "deferred", "refused", "sent") if s in statuses)
    return {"status": status, "sent_to": [r["recipient"] for r in rows if r["status"] == "sent"],
            "rows": {r["recipient"]: r for r in rows}}


def owed(metrics_conn, kind: str, *, since, until) -> list[tuple[str, object]]:
    """(send key, period end) of the e-mails of ``kind`` still owed for weekly periods ending in
    (since, until] (see ``include/investor_metrics/sql/send_log_owed.sql``), oldest first."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log_owed.sql"), {"kind": kind, "since": since, "until": until})
        rows = [(r["send_key"], r["period_end"]) for r in _rows(cur)]
    metrics_conn.commit()
    return rows


def owed_alerts(metrics_conn, *, since, until) -> list[dict]:
    """The critical/high weekly alerts (records) whose e-mail is still owed, periods in (since, until]."""
    from include.investor_metrics.weekly.alerts import store as alert_store

    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log_owed_alerts.sql"), {"kind": KIND_ALERT, "since": since, "until": until})
        rows = [alert_store.alert_record(r) for r in _rows(cur)]
    metrics_conn.commit()
    return rows


# --------------------------------------------------------------------------- the three sends
def send_weekly_summary(metrics_conn, snapshot: Mapping, *, previous: Mapping | None, history: Iterable[Mapping],
                        run_id: str | None, airflow_url: str | None = None, recipients=None, tz=None,
                        smtp_conn=None, on_demand: bool | None = None) -> bool:
    """Build and send the period's summary to ``INVESTOR_EMAILS`` once per recipient; True if sent
    now. Its key: the period end, ``on_demand|<end>`` for an on-demand report (``on_demand``
    default: the snapshot's ``period.type``)."""
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    message = email_report.build_weekly_summary(
        snapshot, previous=previous, history=history,
        recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    return send_once(metrics_conn, kind=KIND_WEEKLY_SUMMARY,
                     key=email_report.weekly_summary_key(snapshot, on_demand=on_demand),
                     message=message, run_id=run_id, smtp_conn=smtp_conn,
                     period_end=email_report.period_bounds(snapshot["period"])[1])


def send_alert_notifications(metrics_conn, alerts: Iterable[Mapping], *, run_id: str | None,
                             airflow_url: str | None = None, recipients=None, tz=None, smtp_conn=None,
                             mark_notified: bool = True) -> list[str]:
    """E-mail each critical and high alert on its own message, once per (alert, recipient); returns
    the ids sent now. With ``mark_notified``, an alert is marked ``notified`` in the transaction that
    records its last recipient's delivery. One alert's failure does not stop the others: the first
    ``EmailDeliveryError`` is raised after every alert was tried."""
    urgent = email_report.urgent_alerts(alerts)
    if not urgent:
        return []
    smtp_conn = smtp_conn if smtp_conn is not None else smtp_connection()
    messages = email_report.build_alert_messages(
        urgent, recipients=recipients if recipients is not None else investor_recipients(),
        sender=sender_address(smtp_conn), airflow_url=airflow_url, tz=tz,
    )
    by_id = {email_report.alert_key(a): a for a in urgent}
    sent, failures = [], []
    for alert_id, message in messages:
        try:
            if send_once(metrics_conn, kind=KIND_ALERT, key=alert_id, message=message, run_id=run_id,
                         smtp_conn=smtp_conn, period_end=by_id[alert_id].get("period_end"),
                         on_complete=marks_notified(alert_id) if mark_notified else None):
                sent.append(alert_id)
        except EmailDeliveryError as exc:
            failures.append(exc)
    if failures:
        if len(failures) > 1:
            log.error("%d alert e-mails failed: %s", len(failures), " | ".join(map(str, failures)))
        raise failures[0]
    return sent


def marks_notified(alert_id: str):
    """An ``on_complete`` for ``send_once``: mark the alert ``notified`` in the delivery's transaction."""

    def mark(conn):
        from include.investor_metrics.weekly.alerts import store as alert_store

        alert_store.mark_notified(conn, [alert_id], commit=False)

    return mark


def send_data_quality_failure(metrics_conn, message_text: str, *, report_path: str | None, period,
                              run_id: str | None, try_number: int | None = None, recipients=None, tz=None,
                              smtp_conn=None) -> bool:
    """For the validation failure callback: e-mail ``DATA_TEAM_EMAILS`` (never the investors), once
    per (period end, run, try): a cleared run that fails again alerts again, a second callback of
    the same try does not. Returns False without sending when no data-team address is configured."""
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
    key = data_quality_failure_key(end, run_id, try_number)
    return send_once(metrics_conn, kind=KIND_DATA_QUALITY_FAILURE, key=key, message=message, run_id=run_id,
                     smtp_conn=smtp_conn, period_end=end)


def data_quality_failure_key(period_end, run_id: str | None, try_number: int | None) -> str:
    """``<period end>|<run id>|try <n>``: one failure e-mail per failed try of a run."""
    return f"{iso_utc(period_end)}|{run_id or '-'}|try {try_number if try_number is not None else '-'}"
