"""The send log (``investor_metrics.send_log``): one row per (kind, send key, recipient) of every
e-mail, with its lease and its outcome (SPEC section 8; the design: docs/adr/exactly-once-email.md).

``SendLog`` runs each statement of one e-mail in a short transaction of its own, under
``lock_timeout`` and ``statement_timeout``: rows are inserted ``pending``, leased (``sending``) and
committed before any SMTP, then each recipient's outcome is recorded on its own. ``send_status``,
``owed`` and ``owed_alerts`` read it for the tasks; ``unreported_problems`` for the delivery report.
``EmailDeliveryError``: some recipient is still owed a message (the task fails, its retry sends).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from include.investor_metrics.db import dict_rows, read_sql
from include.investor_metrics.mail.message import KIND_ALERT
from include.investor_metrics.settings import number_setting
from include.investor_metrics.weekly.alerts.store import alert_record

if TYPE_CHECKING:
    from include.investor_metrics.mail.smtp import Outcome

log = logging.getLogger(__name__)

SEND_LEASE_SECONDS = 300.0  # INVESTOR_SEND_LEASE_SECONDS
SEND_LOCK_TIMEOUT_SECONDS = 10.0  # INVESTOR_SEND_LOCK_TIMEOUT_SECONDS
OWED_EMAIL_WEEKS = 4  # INVESTOR_OWED_EMAIL_WEEKS
OWED_STATUSES = ("pending", "deferred", "unknown")  # not delivered, to be sent (again)


class EmailDeliveryError(RuntimeError):
    """Some recipient is still owed the message (deferred, or outcome unknown): the task fails and
    its retry sends to those recipients only."""

def send_lease_seconds(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_SEND_LEASE_SECONDS`` (default 300): how long a sender holds a recipient's send-log
    row without renewing it. It is renewed before each SMTP transaction, so it must exceed one
    transaction (connect + reply timeouts); a lease older than that means its holder vanished."""
    return number_setting("INVESTOR_SEND_LEASE_SECONDS", SEND_LEASE_SECONDS, minimum=0.5, env=env)


def send_lock_timeout_seconds(env: Mapping[str, str] | None = None) -> float:
    """``INVESTOR_SEND_LOCK_TIMEOUT_SECONDS`` (default 10): the longest wait for a send-log row lock
    (held only by short transactions; a longer wait is a stuck database session)."""
    return number_setting("INVESTOR_SEND_LOCK_TIMEOUT_SECONDS", SEND_LOCK_TIMEOUT_SECONDS, minimum=0.1,
                          env=env)


def owed_email_weeks(env: Mapping[str, str] | None = None) -> int:
    """``INVESTOR_OWED_EMAIL_WEEKS`` (default 4): how many weeks back an e-mail task re-sends what an
    earlier run still owes (0 = only its own period)."""
    return int(number_setting("INVESTOR_OWED_EMAIL_WEEKS", OWED_EMAIL_WEEKS, integer=True, env=env))


def rollback(conn) -> None:
    """Roll back ``conn``'s transaction; a connection that is gone took it with it (a warning)."""
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the transaction is then gone with it
        log.warning("rollback of the send-log transaction failed", exc_info=True)


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
                cur.execute(read_sql("send_log/settings.sql"), self.timeouts)
                yield cur
            self.conn.commit()
        except BaseException as exc:
            rollback(self.conn)
            if _is_lock_timeout(exc):
                raise EmailDeliveryError(
                    f"the send-log rows of {self.kind} {self.key!r} stayed locked by another database "
                    f"session for more than {self.timeouts['lock_timeout']} "
                    "(INVESTOR_SEND_LOCK_TIMEOUT_SECONDS): a stuck session holds them (see "
                    "pg_stat_activity / pg_locks on investor_metrics.send_log); nothing was sent by this "
                    "attempt") from exc
            raise

    def _params(self, **extra) -> dict:
        return {"kind": self.kind, "send_key": self.key, "owner": self.owner,
                "lease_seconds": float(self.lease_seconds), **extra}

    def insert(self, recipients: list[str], period_end) -> None:
        with self.transaction() as cur:
            cur.execute(read_sql("send_log/claim.sql"),
                        self._params(recipients=recipients, period_end=period_end))

    def claim(self, recipients: list[str]) -> tuple[dict[str, str], list[dict]]:
        """Lease every recipient not done and not leased by a live sender. Returns
        ({recipient: status before the claim}, rows leased by other live senders)."""
        with self.transaction() as cur:
            cur.execute(read_sql("send_log/lock.sql"), self._params(recipients=recipients))
            rows = dict_rows(cur)
            claimable = {r["recipient"]: r["status"] for r in rows
                         if r["status"] in OWED_STATUSES or (r["status"] == "sending" and r["lease_expired"])}
            busy = [r for r in rows if r["status"] == "sending" and not r["lease_expired"]]
            if claimable:
                cur.execute(read_sql("send_log/lease.sql"), self._params(recipients=sorted(claimable)))
        return claimable, busy

    def renew(self) -> set[str]:
        with self.transaction() as cur:
            cur.execute(read_sql("send_log/renew.sql"), self._params())
            return {row["recipient"] for row in dict_rows(cur)}

    def record(self, outcome: Outcome, *, subject=None, message_id=None, run_id=None, status=None,
               recipients: list[str] | None = None, on_complete=None) -> bool:
        """Record one recipient's outcome; when this completes the e-mail (every recipient sent or
        refused, one at least sent), run ``on_complete(conn)`` in the same transaction."""
        with self.transaction() as cur:
            cur.execute(read_sql("send_log/record.sql"), self._params(
                recipient=outcome.recipient, status=status or outcome.status,
                new_unknown=(status or outcome.status) == "unknown" and status is None,
                smtp_code=outcome.code, error=None if outcome.status == "sent" else outcome.detail[:2000],
                subject=subject, message_id=message_id, run_id=run_id,
            ))
            recorded = bool(dict_rows(cur))
            if recorded and on_complete is not None and recipients and self._complete(cur, recipients):
                on_complete(self.conn)
        return recorded

    def _complete(self, cur, recipients: list[str]) -> bool:
        cur.execute(read_sql("send_log/progress.sql"), self._params(recipients=recipients))
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
    """A PostgreSQL ``lock_not_available`` (55P03), from psycopg2 (``pgcode``) or psycopg 3 (``diag``)."""
    if getattr(exc, "pgcode", None) == "55P03":
        return True
    return getattr(getattr(exc, "diag", None), "sqlstate", None) == "55P03"


@contextmanager
def out_of_autocommit(conn):
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


def lease_owner(run_id: str | None) -> str:
    """``<run id>|<host>|pid <pid>|<token>``: who holds a lease, unique per sender."""
    return f"{run_id or '-'}|{socket.gethostname()}|pid {os.getpid()}|{uuid.uuid4().hex[:8]}"


def send_status(metrics_conn, kind: str, key: str) -> dict | None:
    """The send log of (kind, key): ``status`` (``sent`` when every recipient is sent or refused and
    one at least sent; else the first owed status of pending, sending, unknown, deferred, refused),
    ``sent_to`` (recipients delivered), ``rows`` ({recipient: row}); None when nothing is recorded."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log/status.sql"), {"kind": kind, "send_key": key})
        rows = dict_rows(cur)
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
        status = next(s for s in ("pending", "sending", "unknown", "deferred", "refused", "sent")
                      if s in statuses)
    return {"status": status, "sent_to": [r["recipient"] for r in rows if r["status"] == "sent"],
            "rows": {r["recipient"]: r for r in rows}}


def owed(metrics_conn, kind: str, *, since, until) -> list[tuple[str, object]]:
    """(send key, period end) of the e-mails of ``kind`` still owed for weekly periods ending in
    (since, until] (see ``include/investor_metrics/sql/send_log_owed.sql``), oldest first."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log/owed.sql"), {"kind": kind, "since": since, "until": until})
        rows = [(r["send_key"], r["period_end"]) for r in dict_rows(cur)]
    metrics_conn.commit()
    return rows


def owed_alerts(metrics_conn, *, since, until) -> list[dict]:
    """The critical/high weekly alerts (records) whose e-mail is still owed, periods in (since, until]."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log/owed_alerts.sql"),
                    {"kind": KIND_ALERT, "since": since, "until": until})
        rows = [alert_record(r) for r in dict_rows(cur)]
    metrics_conn.commit()
    return rows


def unreported_problems(metrics_conn, kind: str, key: str) -> list[dict]:
    """The send-log rows of (kind, key) with a refused recipient or an unknown outcome not yet
    reported to the data team (``include/investor_metrics/sql/send_log_unreported.sql``)."""
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("send_log/unreported.sql"), {"kind": kind, "send_key": key})
        problems = dict_rows(cur)
    metrics_conn.commit()
    return problems


def marks_reported(kind: str, key: str, problems: list[dict]):
    """An ``on_complete`` for the delivery report's ``send_once``: mark ``problems`` reported in the
    transaction that records the report's delivery."""

    def mark_reported(conn):
        with conn.cursor() as cur:
            for p in problems:
                cur.execute(read_sql("send_log/mark_reported.sql"), {
                    "kind": kind, "send_key": key, "recipient": p["recipient"],
                    "refused": p["status"] == "refused", "unknown_outcomes": p["unknown_outcomes"]})

    return mark_reported
