"""Probing the ChatterFix services (SPEC sections 3, 6, 9) and storing one check row per service.

**Which services** (``load_services``, read at run time only): the Airflow Variable
``health_check_services`` (a JSON object ``{"name": "url"}``) when it is set, even to ``{}``, else
``HEALTH_CHECK_SERVICES`` (``name=url,name=url``). None configured → nothing to probe, not an error.

**A probe** (``probe_all``): every service at once (asyncio, one ``httpx.AsyncClient``), each within
``HEALTH_CHECK_TIMEOUT_SECONDS`` (default 10, at most 60) for the whole exchange. ``http(s)://``
gets a GET, redirects not followed: 2xx or 3xx is ok, anything else a failure; ``response_ms`` is
the time to the response headers (the body is not read). ``tcp://host:port`` (what speaks no HTTP)
is ok when a TCP connection opens. A URL that cannot be probed (bad scheme, no host, unresolvable,
refused, timed out) is a failed check whose ``error`` says why, never an exception. Error texts:
``HTTP 503 Service Unavailable``, ``timeout: no response within 10000 ms``, ``connection refused``,
``cannot resolve host 'x.invalid'``, ``bad URL: ...``.

**The rows** (``record_checks``): one per service and round in
``investor_metrics.service_health_checks``, keyed by (service, round time), by UPSERT: a retry or a
rerun of the round replaces its rows. The round time is an instant floored to the 5-minute grid
(``probe_round``, ``contract.PROBE_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx

from include.investor_metrics import settings as config
from include.investor_metrics.contract import PROBE_INTERVAL
from include.investor_metrics.db import read_sql
from include.investor_metrics.period import to_utc
from include.investor_metrics.settings import SERVICE_URL_SCHEMES, ConfigError

SERVICES_VARIABLE = "health_check_services"
TIMEOUT_SETTING = "HEALTH_CHECK_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60.0  # a round must finish well inside the run's 4-minute timeout
HTTP_SCHEMES = ("http", "https")
SERVICE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_ERROR_CHARS = 500
USER_AGENT = "chatterfix-health-probe/1"
_EXAMPLE = '{"api": "https://api.example/health"}'


@dataclass(frozen=True)
class ProbeResult:
    """One probe of one service: a row of ``service_health_checks`` without its round time."""

    service: str
    ok: bool
    response_ms: int | None = None
    status_code: int | None = None
    error: str | None = None


# --------------------------------------------------------------------------- the services list
def _airflow_variable(key: str):
    return config.airflow_variable(key, fallback="services from HEALTH_CHECK_SERVICES only")


def parse_services_variable(raw) -> dict[str, str]:
    """The Variable's JSON object ``{"name": "url"}`` (a string, or already decoded)."""
    where = f"Airflow Variable {SERVICES_VARIABLE}"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{where} is not valid JSON ({exc}); expected e.g. {_EXAMPLE}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a JSON object such as {_EXAMPLE}, got {type(raw).__name__}")
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
        raise ConfigError(f"{TIMEOUT_SETTING} must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} "
                          f"seconds, got {raw!r}")
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
    if scheme not in SERVICE_URL_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        return f"bad URL: {shown} (use http://, https:// or tcp://host:port)"
    if not parts.hostname:
        return "bad URL: no host"
    if scheme == "tcp" and port is None:
        return "bad URL: tcp:// needs a port (tcp://host:port)"
    return None


def probe_all(services: Mapping[str, str], *,
              timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[ProbeResult]:
    """Probe every service at once; one result per service, in ``services``' order. Never raises
    for a service that cannot be reached: that is a failed check with its reason."""
    if not services:
        return []
    return asyncio.run(_probe_all(dict(services), timeout))


async def _probe_all(services: dict[str, str], timeout: float) -> list[ProbeResult]:
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


_UNRESOLVABLE = re.compile(
    r"name or service not known|nodename nor servname|name resolution|no address associated", re.IGNORECASE)


def _reason(exc: BaseException, host: str | None, timeout: float) -> str:
    """A short, log-safe reason for a failed probe (no URL: it may carry a secret)."""
    chain = list(_causes(exc))
    if any(isinstance(e, (TimeoutError, httpx.TimeoutException)) for e in chain):
        return f"timeout: no response within {round(timeout * 1000)} ms"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in str(exc).lower():
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain) or _UNRESOLVABLE.search(str(exc)):
        return f"cannot resolve host {host!r}"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        text = f"bad URL: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


# --------------------------------------------------------------------------- the check rows
def record_checks(conn, checked_at: datetime, results: Iterable[ProbeResult]) -> int:
    """UPSERT one row per result for round ``checked_at``, in one transaction (committed here)."""
    checked_at = to_utc(checked_at)
    rows = [{**asdict(result), "checked_at": checked_at} for result in results]
    if not rows:
        return 0
    try:
        with conn.cursor() as cur:
            cur.executemany(read_sql("health/upsert_check.sql"), rows)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return len(rows)
