"""Health probes of the ChatterFix services (SPEC sections 3, 6, 9): the work behind the
``service_health_probe`` DAG.

**Which services.** The Airflow Variable ``health_check_services`` (a JSON object
``{"name": "url"}``) when it is set, else ``HEALTH_CHECK_SERVICES`` (``name=url,name=url``). Both are
read at run time only (``load_services``); none configured → nothing to probe, not an error.

**A probe round** (``probe_all``, then ``record_checks``). Every service at once (asyncio, one
``httpx.AsyncClient``), each with its own deadline: ``HEALTH_CHECK_TIMEOUT_SECONDS`` (default 10,
at most 60) for the whole exchange. ``http(s)://`` URLs get a GET; redirects are not followed: a
2xx or 3xx answer is ok, anything else a failure. ``response_ms`` is the time until the response
headers arrived (the body is not downloaded). ``tcp://host:port`` (an extension for what speaks no
HTTP, e.g. a database or an SMTP server) is ok when a TCP connection opens. A URL that cannot be
probed (bad scheme, no host, unresolvable, refused, timed out) is a failed check whose ``error``
says why, never a crashed task. One row per service and round goes to
``investor_metrics.service_health_checks``, keyed by (service, round time), by UPSERT: a retry or a
rerun of the round replaces its rows. The round time is the run's logical date (or ``run_after``)
floored to the 5-minute grid (``probe_round``). The clock is read only to refuse a round more than
10 minutes old: a backfill or a cleared old run would record today's answers as that day's history.

Error texts (the generator's style): ``HTTP 503 Service Unavailable``, ``timeout: no response
within 10000 ms``, ``connection refused``, ``cannot resolve host 'x.invalid'``, ``bad URL: ...``.

**Incidents** (``handle_incidents``, per service, as of the round). A service whose current failure
streak (its failed checks since its last ok check, by ``checked_at``) reaches 3 and that has no open
incident gets one ``critical_system_failure`` alert (critical, system) in the alert store
(``include.investor_metrics.weekly.alerts.store.upsert_alerts``): dedup key ``critical_system_failure|<service>|<first failed
round>`` (its id the usual sha256 prefix), ``period_start`` the first failed round,
``period_end`` = ``triggered_at`` the third, ``service`` set, ``resolved_at`` null, value and
threshold the 3 failures. It is e-mailed at once to ``INVESTOR_EMAILS`` (``incident_message``;
send log kind ``alert``, key the alert id, as every alert e-mail), then marked notified. More failures add nothing. An open incident that an ok check
has followed is resolved: ``resolved_at`` = that first ok check; the resolution is e-mailed once
(``resolution_message``; kind ``incident_resolved``, key the alert id, a reply to the alert's
message). Any change
republishes ``alert_history.json``. A per-service advisory lock serialises concurrent runs, the
send log makes each e-mail exactly-once, and an e-mail still owed (an SMTP failure, a crash) is sent
by the next attempt: the task's retry or the next round.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from include.investor_metrics import settings as config
from include.investor_metrics.contract import PROBE_INTERVAL
from include.investor_metrics.db import read_sql
from include.investor_metrics.mail.message import KIND_ALERT
from include.investor_metrics.period import as_instant, iso_utc, to_utc, tz_label
from include.investor_metrics.settings import ConfigError

log = logging.getLogger(__name__)

PROBE_MAX_LAG = timedelta(minutes=10)  # a round older than this is not probed (see run_probe_round)
FAILURES_FOR_INCIDENT = 3
INCIDENT_RULE = "critical_system_failure"
INCIDENT_METRIC = "consecutive_failed_probes"
KIND_INCIDENT_RESOLVED = "incident_resolved"

SERVICES_VARIABLE = "health_check_services"
TIMEOUT_SETTING = "HEALTH_CHECK_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60.0  # a round must finish well inside the run's 4-minute timeout
HTTP_SCHEMES = ("http", "https")
SCHEMES = (*HTTP_SCHEMES, "tcp")
SERVICE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_ERROR_CHARS = 500
USER_AGENT = "chatterfix-health-probe/1"


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one service: a row of ``service_health_checks`` without its round time."""

    service: str
    ok: bool
    response_ms: int | None = None
    status_code: int | None = None
    error: str | None = None


# --------------------------------------------------------------------------- settings
def _airflow_variable(key: str):
    return config.airflow_variable(key, fallback="services from HEALTH_CHECK_SERVICES only")


def parse_services_variable(raw) -> dict[str, str]:
    """The Variable's JSON object ``{"name": "url"}`` (a string, or already decoded)."""
    where = f"Airflow Variable {SERVICES_VARIABLE}"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f'{where} is not valid JSON ({exc}); expected e.g. {{"api": "https://api.example/health"}}') from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f'{where} must be a JSON object such as {{"api": "https://api.example/health"}}, '
                          f"got {type(raw).__name__}")
    services = {}
    for name, url in raw.items():
        if not SERVICE_NAME.fullmatch(str(name)):
            raise ConfigError(f"{where}: service name {name!r} may only hold letters, digits, _ . -")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{where}: service {name!r} needs a URL (a non-empty string)")
        services[str(name)] = config.check_service_url(url.strip(), f"{where}: service {name!r}")
    return services


def load_services(*, env: Mapping[str, str] | None = None,
                  get_variable: Callable[[str], object] | None = None) -> dict[str, str]:
    """``{service: url}`` to probe: the Variable ``health_check_services`` when set (even ``{}``),
    else ``HEALTH_CHECK_SERVICES``. Call it in a task (it may read the Variable), not at import."""
    raw = (_airflow_variable if get_variable is None else get_variable)(SERVICES_VARIABLE)
    if raw is not None and not (isinstance(raw, str) and not raw.strip()):
        return parse_services_variable(raw)
    return config.health_check_services(env)


def probe_timeout(env: Mapping[str, str] | None = None) -> float:
    """``HEALTH_CHECK_TIMEOUT_SECONDS``: seconds a service has to answer (default 10, at most 60)."""
    raw = (os.environ if env is None else env).get(TIMEOUT_SETTING, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{TIMEOUT_SETTING} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise ConfigError(f"{TIMEOUT_SETTING} must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds, "
                          f"got {raw!r}")
    return value


# --------------------------------------------------------------------------- probing (no database)
def probe_round(instant: datetime) -> datetime:
    """The probe round ``instant`` belongs to: floored to the 5-minute grid, in UTC."""
    utc = to_utc(instant)
    step = int(PROBE_INTERVAL.total_seconds())
    return datetime.fromtimestamp(int(utc.timestamp()) // step * step, tz=timezone.utc)


def public_url(url: str) -> str:
    """``url`` for a log line: no user, password or query string (they may hold a secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme or not host:
        return "<malformed URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be probed at all (the check's error), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"bad URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        return f"bad URL: {shown} (use http://, https:// or tcp://host:port)"
    if not parts.hostname:
        return "bad URL: no host"
    if scheme == "tcp" and port is None:
        return "bad URL: tcp:// needs a port (tcp://host:port)"
    return None


def probe_all(services: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[ProbeResult]:
    """Probe every service at once; one result per service, in ``services``' order. Never raises
    for a service that cannot be reached: that is a failed check with its reason."""
    if not services:
        return []
    return asyncio.run(_probe_all(dict(services), timeout))


async def _probe_all(services: dict[str, str], timeout: float) -> list[ProbeResult]:
    import httpx

    # The client's own timeouts back up the overall deadline each probe runs under.
    async with httpx.AsyncClient(follow_redirects=False, timeout=httpx.Timeout(timeout + 1),
                                 headers={"User-Agent": USER_AGENT}) as client:
        return list(await asyncio.gather(*(_probe_one(client, name, url, timeout)
                                           for name, url in services.items())))


async def _probe_one(client, service: str, url: str, timeout: float) -> ProbeResult:
    problem = url_problem(url)
    if problem:
        return ProbeResult(service, ok=False, error=problem)
    parts = urlsplit(url)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            if parts.scheme.lower() == "tcp":
                return await _probe_tcp(service, parts.hostname, parts.port, started)
            return await _probe_http(client, service, url, started)
    except Exception as exc:  # noqa: BLE001 - every way a probe can fail is a failed check
        return ProbeResult(service, ok=False, error=_reason(exc, parts.hostname, timeout))


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


async def _probe_http(client, service: str, url: str, started: float) -> ProbeResult:
    import httpx

    async with client.stream("GET", url) as response:  # headers only: the body is never read
        response_ms = _elapsed_ms(started)
        code = response.status_code
    if 200 <= code < 400:
        return ProbeResult(service, ok=True, response_ms=response_ms, status_code=code)
    phrase = httpx.codes.get_reason_phrase(code)  # the standard phrase, not the server's text
    return ProbeResult(service, ok=False, response_ms=response_ms, status_code=code,
                       error=f"HTTP {code} {phrase}".rstrip())


async def _probe_tcp(service: str, host: str, port: int, started: float) -> ProbeResult:
    _reader, writer = await asyncio.open_connection(host, port)
    response_ms = _elapsed_ms(started)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ProbeResult(service, ok=True, response_ms=response_ms)


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _reason(exc: BaseException, host: str | None, timeout: float) -> str:
    """A short, log-safe reason for a failed probe (no URL: it may carry a secret)."""
    import socket

    import httpx

    chain = list(_causes(exc))
    if any(isinstance(e, (TimeoutError, httpx.TimeoutException)) for e in chain):
        return f"timeout: no response within {round(timeout * 1000)} ms"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in str(exc).lower():
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain) or re.search(
            r"name or service not known|nodename nor servname|name resolution|no address associated",
            str(exc), re.IGNORECASE):
        return f"cannot resolve host {host!r}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        text = f"bad URL: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


# --------------------------------------------------------------------------- the store
def _rows(cur) -> list[dict]:
    """Rows as dicts, whatever the cursor's row type (tuples, psycopg 3 dict rows)."""
    names = [d[0] for d in cur.description]
    return [dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True))
            for row in cur.fetchall()]


def record_checks(conn, checked_at: datetime, results: Iterable[ProbeResult]) -> int:
    """UPSERT one row per result for round ``checked_at``, in one transaction (committed here)."""
    checked_at = to_utc(checked_at)
    rows = [{**asdict(result), "checked_at": checked_at} for result in results]
    if not rows:
        return 0
    try:
        with conn.cursor() as cur:
            cur.executemany(read_sql("probe_upsert_check.sql"), rows)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return len(rows)


# --------------------------------------------------------------------------- incidents
def incident_key(service: str, first_failed: datetime) -> str:
    """``critical_system_failure|<service>|<first failed round>``: one alert per incident."""
    return f"{INCIDENT_RULE}|{service}|{iso_utc(first_failed)}"


def _zone(tz):
    """``tz`` as a tzinfo: None → ``INVESTOR_TIMEZONE``, a name → that zone."""
    if tz is None:
        return config.investor_timezone()
    if isinstance(tz, str):
        import pendulum

        return pendulum.timezone(tz)
    return tz


def _local(instant: datetime, tz) -> str:
    local = to_utc(instant).astimezone(tz)
    return f"{local.day} {local:%b %Y %H:%M}"


def incident_alert(service: str, first_failed: datetime, alert_at: datetime, error: str | None, *, tz) -> dict:
    """The ``critical_system_failure`` alert of a service's failure streak (deterministic)."""
    from include.investor_metrics.weekly.alerts.evaluate import alert_id
    from include.investor_metrics.weekly.alerts.rules import RULES_BY_NAME

    rule = RULES_BY_NAME[INCIDENT_RULE]
    tz = _zone(tz)
    key = incident_key(service, first_failed)
    n = FAILURES_FOR_INCIDENT
    return {
        "id": alert_id(key),
        "dedup_key": key,
        "rule": INCIDENT_RULE,
        "severity": rule.severity,
        "category": rule.category,
        "title": f"{service} is down: {n} health probes failed in a row",
        "message": (f"The {service} service failed {n} health probes in a row, from {_local(first_failed, tz)} "
                    f"to {_local(alert_at, tz)} ({tz_label(tz)}); the third one: {error or 'no error text'}. "
                    "A follow-up e-mail says when it answers again."),
        "metric": INCIDENT_METRIC,
        "value": n,
        "threshold": n,
        "period_start": to_utc(first_failed),
        "period_end": to_utc(alert_at),
        "triggered_at": to_utc(alert_at),
        "service": service,
    }


def evaluate_incident(conn, service: str, checked_at: datetime, *, run_id: str | None, tz=None) -> dict:
    """Resolve and open the incidents of ``service`` as of round ``checked_at`` (checks after it are
    not looked at), under the service's advisory lock; committed here. Returns ``{"opened": alert
    or None, "resolved": [alerts]}`` (``include.investor_metrics.weekly.alerts.store.alert_record`` form)."""
    from include.investor_metrics.weekly.alerts import store as alert_store

    tz = _zone(tz)
    params = {"service": service, "checked_at": to_utc(checked_at), "rule": INCIDENT_RULE,
              "failures": FAILURES_FOR_INCIDENT}
    new = None
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("probe_incident_lock.sql"), params)
            cur.execute(read_sql("probe_resolve_incidents.sql"), params)
            resolved = [alert_store.alert_record(row) for row in _rows(cur)]
            cur.execute(read_sql("probe_failure_streak.sql"), params)
            state = _rows(cur)[0]
            if state["streak_alert_at"] is not None:
                candidate = incident_alert(service, state["streak_start"], state["streak_alert_at"],
                                           state["alert_error"], tz=tz)
                cur.execute(read_sql("probe_incident_exists.sql"), {**params, "dedup_key": candidate["dedup_key"]})
                if not cur.fetchall():
                    new = candidate
        if new is None:
            conn.commit()
            opened = None
        else:
            # Same transaction: the upsert commits the resolution above with it, then frees the lock.
            opened = alert_store.upsert_alerts(conn, [new], run_id=run_id)[0]
    except Exception:
        conn.rollback()
        raise
    for alert in resolved:
        log.info("%s: incident %s resolved, the service answered at %s", service, alert["id"], alert["resolved_at"])
    if opened:
        log.warning("%s: %d failed probes in a row since %s: incident %s opened (critical_system_failure)",
                    service, FAILURES_FOR_INCIDENT, opened["period_start"], opened["id"])
    return {"opened": opened, "resolved": resolved}


def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


def incident_message(alert: Mapping, *, recipients: list[str], sender: str, tz=None, airflow_url: str | None = None):
    """The e-mail that opens an incident (send-log kind ``alert``, key the alert id)."""
    tz = _zone(tz)
    when = tz_label(tz)
    lines = [
        ("Service", alert["service"]),
        ("Failing since", f"{_local(as_instant(alert['period_start']), tz)} ({when})"),
        ("Alert raised", f"{_local(as_instant(alert['triggered_at']), tz)} ({when}), "
                         f"after {FAILURES_FOR_INCIDENT} failed probes in a row"),
        ("Severity", f"{alert['severity']} ({alert['category']}), rule {alert['rule']}"),
        ("Alert id", alert["id"]),
    ]
    return _incident_email(
        alert, kind=KIND_ALERT, subject=f"[CRITICAL] ChatterFix: {alert['title']}",
        heading=alert["title"], summary=alert["message"], lines=lines, colour="#b91c1c",
        recipients=recipients, sender=sender, airflow_url=airflow_url,
    )


def resolution_message(alert: Mapping, *, recipients: list[str], sender: str, tz=None,
                       airflow_url: str | None = None):
    """The e-mail that closes an incident (kind ``incident_resolved``), threaded under its alert."""
    tz = _zone(tz)
    service = alert["service"]
    down_since, answered = as_instant(alert["period_start"]), as_instant(alert["resolved_at"])
    duration = _duration((answered - down_since).total_seconds())
    lines = [
        ("Service", service),
        ("Down since", f"{_local(down_since, tz)} ({tz_label(tz)})"),
        ("Answered at", f"{_local(answered, tz)} ({tz_label(tz)})"),
        ("Outage", f"about {duration}"),
        ("Alert", f"{alert['title']} (id {alert['id']})"),
    ]
    summary = (f"The {service} service answers its health probes again. It was down for about {duration}; "
               "the critical alert about it is resolved. The weekly uptime counts every failed probe.")
    return _incident_email(
        alert, kind=KIND_INCIDENT_RESOLVED,
        subject=f"[RESOLVED] ChatterFix: {service} answers again after {duration} down",
        heading=f"{service} answers again", summary=summary, lines=lines, colour="#15803d",
        recipients=recipients, sender=sender, airflow_url=airflow_url,
    )


def _incident_email(alert: Mapping, *, kind: str, subject: str, heading: str, summary: str,
                    lines: list[tuple[str, str]], colour: str, recipients: list[str], sender: str,
                    airflow_url: str | None):
    """Text + HTML message of an incident, with the project's headers (Message-ID of (kind, alert
    id)); the resolution replies to the opening, so mail clients show one thread per incident."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from html import escape

    from include.investor_metrics.mail import message as email_report

    link = airflow_url if airflow_url and urlsplit(airflow_url).scheme in HTTP_SCHEMES else None
    text = [subject, "", summary, ""] + [f"{label + ':':<15}{value}" for label, value in lines]
    if link:
        text += ["", f"Airflow: {link}"]
    rows = "".join(f'<tr><td style="padding:4px 12px;color:#6b7280;">{escape(label)}</td>'
                   f'<td style="padding:4px 12px;">{escape(str(value))}</td></tr>' for label, value in lines)
    button = f'<p><a href="{escape(link)}">Open in Airflow</a></p>' if link else ""
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
            f'<body style="font-family:Arial,Helvetica,sans-serif;color:#1f2937;">'
            f'<div style="border-top:6px solid {colour};max-width:600px;padding:12px 16px;">'
            f'<h2 style="color:{colour};margin:0 0 8px 0;">{escape(heading)}</h2><p>{escape(summary)}</p>'
            f'<table role="presentation" style="font-size:13px;">{rows}</table>{button}</div></body></html>')

    message = EmailMessage(policy=email_report.MESSAGE_POLICY)
    message["Subject"] = subject
    message["From"] = Address(email_report.SENDER_NAME, addr_spec=sender)
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = email_report.message_id(kind, alert["id"], sender)
    if kind != KIND_ALERT:
        opening = email_report.message_id(KIND_ALERT, alert["id"], sender)
        message["In-Reply-To"] = opening
        message["References"] = opening
    if kind == KIND_ALERT:
        message["Importance"] = "high"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
    message["X-Auto-Response-Suppress"] = "All"
    message["X-ChatterFix-Send-Key"] = f"{kind}:{alert['id']}"
    message.set_content("\n".join(text) + "\n", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def send_incident_emails(conn, service: str, *, run_id: str | None, recipients: list[str] | None = None,
                         smtp_conn=None, tz=None, airflow_url: str | None = None) -> list[dict]:
    """Send every e-mail still owed for the incidents of ``service``, oldest incident first: the
    opening (then the alert is marked notified) and the resolution, each exactly once (send log).
    Returns ``[{"kind", "id"}]`` of the messages sent now."""
    from include.investor_metrics.mail import send as notify
    from include.investor_metrics.mail import smtp
    from include.investor_metrics.weekly.alerts import store as alert_store

    params = {"service": service, "rule": INCIDENT_RULE, "resolved_kind": KIND_INCIDENT_RESOLVED}
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("probe_pending_emails.sql"), params)
            owed = _rows(cur)
        conn.commit()  # send_once wants a connection without a transaction of ours
    except Exception:
        conn.rollback()
        raise
    if not owed:
        return []
    smtp_conn = smtp.smtp_connection() if smtp_conn is None else smtp_conn
    recipients = config.investor_recipients() if recipients is None else recipients
    sender = smtp.sender_address(smtp_conn)
    tz = _zone(tz)
    sent = []
    for row in owed:
        alert = alert_store.alert_record(row)
        if row["opening_owed"]:
            message = incident_message(alert, recipients=recipients, sender=sender, tz=tz, airflow_url=airflow_url)
            # notified in the transaction that records the last delivery (or, sent by an earlier
            # attempt, as soon as the send log says so): never e-mailed but not notified
            if notify.send_once(conn, kind=KIND_ALERT, key=alert["id"], message=message, run_id=run_id,
                                smtp_conn=smtp_conn, on_complete=notify.marks_notified(alert["id"])):
                sent.append({"kind": KIND_ALERT, "id": alert["id"]})
        if row["resolution_owed"]:
            message = resolution_message(alert, recipients=recipients, sender=sender, tz=tz, airflow_url=airflow_url)
            if notify.send_once(conn, kind=KIND_INCIDENT_RESOLVED, key=alert["id"], message=message,
                                run_id=run_id, smtp_conn=smtp_conn):
                sent.append({"kind": KIND_INCIDENT_RESOLVED, "id": alert["id"]})
    return sent


def handle_incidents(conn, services: Iterable[str], checked_at: datetime, *, run_id: str | None,
                     archive_dir: str | None = None, republish: bool = False, recipients: list[str] | None = None,
                     smtp_conn=None, tz=None, airflow_url: str | None = None) -> dict:
    """Incident handling of one probe round: for each service, resolve / open its incident as of
    ``checked_at``, then send the e-mails owed, then — when anything changed, or ``republish`` —
    rewrite ``alert_history.json`` in ``archive_dir`` (default ``INVESTOR_ARCHIVE_DIR``).
    Returns a small summary (for XCom): ids opened, resolved, e-mails sent, the history path."""
    from include.investor_metrics.weekly.alerts import store as alert_store

    services = sorted(set(services))
    opened, resolved = [], []
    for service in services:
        outcome = evaluate_incident(conn, service, checked_at, run_id=run_id, tz=tz)
        opened += [outcome["opened"]["id"]] if outcome["opened"] else []
        resolved += [alert["id"] for alert in outcome["resolved"]]
    emails = []
    for service in services:
        emails += send_incident_emails(conn, service, run_id=run_id, recipients=recipients, smtp_conn=smtp_conn,
                                       tz=tz, airflow_url=airflow_url)
    history = None
    if opened or resolved or emails or republish:
        history = alert_store.publish_alert_history(conn, archive_dir or config.archive_dir())
    return {"checked_at": iso_utc(checked_at), "opened": opened, "resolved": resolved, "emails": emails,
            "alert_history": history}


# --------------------------------------------------------------------------- the DAG's tasks
def _metrics_conn():
    from include.investor_metrics.db import postgres_hook

    return postgres_hook(config.METRICS_CONN_ID).get_conn()


def round_of_run(context) -> datetime:
    """The probe round of the running DAG run: its logical date (a manual run without one: when it
    was triggered), floored to the 5-minute grid."""
    dag_run = context["dag_run"]
    return probe_round(getattr(dag_run, "logical_date", None) or dag_run.run_after)


def run_probe_round(context) -> dict:
    """Task ``probe_services``: probe every configured service once, store the round's rows."""
    checked_at = round_of_run(context)
    lag = datetime.now(timezone.utc) - checked_at
    if lag > PROBE_MAX_LAG:
        # A probe measures the present: stored under an old round it would rewrite that round's history
        # with today's answers. Retries come within minutes; a backfill or a cleared old run stops here.
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"probe round {iso_utc(checked_at)} is {lag} in the past: a probe can only "
                                   "measure the present, so this run records nothing")
    services = load_services()
    if not services:
        log.info("no service to probe: neither the Airflow Variable %s nor HEALTH_CHECK_SERVICES names one",
                 SERVICES_VARIABLE)
        return {"checked_at": iso_utc(checked_at), "services": [], "failed": []}
    timeout = probe_timeout()
    log.info("probe round %s: %d service(s), timeout %g s each", iso_utc(checked_at), len(services), timeout)
    results = probe_all(services, timeout=timeout)
    for result in results:
        where = public_url(services[result.service])
        if result.ok:
            log.info("%s ok (%s) in %s ms: %s", result.service,
                     f"HTTP {result.status_code}" if result.status_code else "TCP", result.response_ms, where)
        else:
            log.warning("%s FAILED: %s (%s)", result.service, result.error, where)
    conn = _metrics_conn()
    try:
        from include.investor_metrics.db import apply_metrics_schema

        apply_metrics_schema(conn)
        record_checks(conn, checked_at, results)
    finally:
        conn.close()
    return {"checked_at": iso_utc(checked_at), "services": [r.service for r in results],
            "failed": [r.service for r in results if not r.ok]}


def run_incident_handling(context, probed: Mapping) -> dict:
    """Task ``handle_incidents``: open / resolve incidents of the services just probed, e-mail them."""
    services = list(probed.get("services") or [])
    if not services:
        log.info("nothing was probed this round: no incident to look at")
        return {"checked_at": probed.get("checked_at"), "opened": [], "resolved": [], "emails": [],
                "alert_history": None}
    from include.investor_metrics.task_context import airflow_run_url

    checked_at = as_instant(probed["checked_at"])
    # A retry may follow an attempt that changed the store but died before publishing the history.
    retry = getattr(context.get("ti"), "try_number", 1) > 1
    conn = _metrics_conn()
    try:
        summary = handle_incidents(conn, services, checked_at, run_id=context["dag_run"].run_id,
                                   republish=retry, tz=config.investor_timezone(),
                                   airflow_url=airflow_run_url(context))
    finally:
        conn.close()
    log.info("incidents of round %s: opened %s, resolved %s, e-mails sent %s", summary["checked_at"],
             summary["opened"] or "none", summary["resolved"] or "none",
             [f"{e['kind']}:{e['id']}" for e in summary["emails"]] or "none")
    return summary
