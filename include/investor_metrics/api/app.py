"""The investor API (SPEC section 11), mounted by ``plugins/investor_metrics_plugin.py`` at
``/api/investor`` inside Airflow's API server. The web layer only: what it answers is in
``include/investor_metrics/api/queries.py``.

=======  ==========================  ==========================================================
method   path                        answer
=======  ==========================  ==========================================================
GET      ``/metrics``                latest snapshot (either series); ``?period_end=`` one period
                                     (the weekly one, else the on-demand one); ``?history=N`` the
                                     N newest weekly periods (1..520), newest first; ``type``
                                     (``weekly``, ``on_demand``) picks the series
POST     ``/metrics/collect``        202: a queued manual run of ``investor_metrics``; optional
                                     JSON body ``{"period_end": ISO 8601, "send_email": false}``
GET      ``/alerts``                 alerts newest first; ``severity`` (repeat or comma-separate),
                                     ``since`` (ISO 8601), ``limit`` (default 100, max 1000)
GET      ``/page``                   the "Investor metrics" page of the Airflow UI (HTML)
GET      ``/openapi.json``           this API's OpenAPI document (read access, like ``/metrics``)
=======  ==========================  ==========================================================

Security. Airflow does not authenticate plugin apps, so every route here depends on Airflow's
own ``get_user`` (a bearer token from ``POST /auth/token``, or the UI's ``_token`` session cookie,
which the page's same-origin requests carry): 401 without a valid one. The auth manager then
decides, for the DAG ``investor_metrics``: reading (metrics, alerts, page) needs ``GET`` on its
runs, collecting needs ``POST`` on its runs (what triggering it in the UI needs): 403 otherwise.
CSRF: ``POST /metrics/collect`` authenticated by the session cookie (no bearer header) must be
same-origin JSON (``Content-Type: application/json``; ``Origin`` / ``Sec-Fetch-Site``, when the
browser sends them, this origin): 403 otherwise.

Parameters. The OpenAPI document describes each exactly (instants: ``include.investor_metrics.period``'s
``INSTANT_PATTERN`` and ``format: date-time``; enums; bounds): what it allows the API accepts,
except a ``period_end`` to collect more than 5 minutes in the future (a rule of the clock that
JSON Schema cannot state; 422).

Errors are ``{"success": false, "error": "<message>"}``: 422 for a bad parameter (the message
names it and the expected format), 404 when nothing matches, 503 when the metrics store or
Airflow's metadata database cannot answer. No response carries a traceback, a host name or a
password.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import logging
import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.investor_metrics import period as instants
from include.investor_metrics.api import queries

log = logging.getLogger(__name__)

PAGE_FILE = Path(__file__).resolve().parents[1] / "static" / "investor_page.html"
API_DESCRIPTION = """\
ChatterFix's weekly investor metrics (snapshots of the `investor_metrics` DAG) and alerts, served by
the Airflow API server.

**Authentication**: Airflow's own. Send `Authorization: Bearer <token>` with a token from
`POST /auth/token` of the Airflow API server (or the Airflow UI's `_token` session cookie).
Reading needs read access to the runs of the DAG `investor_metrics`; collecting needs permission
to trigger it.

**Errors** are `{"success": false, "error": "..."}`: 401 (no valid token), 403 (no access),
404 (nothing matches), 422 (a malformed parameter, named in the message), 503 (the metrics store
is unavailable; retry later).
"""
NO_STORE = {"Cache-Control": "no-store"}
# Airflow's API server compresses responses of at least 1024 bytes for clients that accept gzip
# (its GZipMiddleware, level 5). ``/metrics`` does it itself, once per distinct body (below).
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 5
GZIP_CACHE_ENTRIES = 64
GZIP_CACHE_MAX_BYTES = 64 * 1024  # larger bodies (long histories) are left to the middleware
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": None, "description": "No valid Airflow token (bearer header or `_token` cookie)"},
    403: {"model": None, "description": "The auth manager denies this access to the investor_metrics DAG "
                                        "(or, for a request authenticated by the session cookie, it is not "
                                        "same-origin JSON)"},
    422: {"model": None, "description": "A parameter is malformed; the message names it"},
    503: {"model": None, "description": "The metrics store (or Airflow's metadata database) is unavailable"},
}


# --------------------------------------------------------------------------- parameter schemas
# What the OpenAPI document says of each parameter is exactly what the API accepts (a schema-driven
# fuzzer finds no value the schema allows that the API refuses, nor the reverse). The values are
# parsed by ``include.investor_metrics.api.queries`` (messages that name the parameter); these only describe them.
INSTANT_SCHEMA = {
    "type": "string", "format": "date-time", "pattern": instants.INSTANT_PATTERN,
    "description": "ISO 8601 / RFC 3339 with seconds and a UTC offset (`Z` or `±hh:mm`), fractions of "
                   "a second up to 6 digits, years 1970–9999 in UTC (on 1970-01-01 and 9999-12-31: `Z`)",
    "examples": ["2026-11-22T09:00:00Z", "2026-11-22T10:00:00+01:00"],
}
Instant = Annotated[str, WithJsonSchema(INSTANT_SCHEMA)]
SEVERITY_PATTERN = "^(?:{0})(?:,(?:{0}))*$".format("|".join(queries.SEVERITIES))
SeverityList = Annotated[str, WithJsonSchema({
    "type": "string", "pattern": SEVERITY_PATTERN,
    "description": "One severity or several separated by commas (no spaces): " + ", ".join(queries.SEVERITIES),
    "examples": ["critical", "critical,high"],
})]


# --------------------------------------------------------------------------- response models
class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="What went wrong, for a person to read")


for _status in ERROR_RESPONSES:
    ERROR_RESPONSES[_status]["model"] = ErrorResponse


class Period(BaseModel):
    start: str = Field(examples=["2026-11-15T09:00:00Z"])
    end: str = Field(examples=["2026-11-22T09:00:00Z"])
    type: Literal["weekly", "backfill", "on_demand"]


class Snapshot(BaseModel):
    """A published snapshot, exactly as archived (SPEC section 7; more keys may be added)."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    generated_at: str
    period: Period
    system_health: dict[str, Any]
    ai_platform: dict[str, Any]
    financial: dict[str, Any]
    business_health: dict[str, Any]
    data_quality: dict[str, Any]
    alerts: list[dict[str, Any]]


class MetricsResponse(BaseModel):
    success: Literal[True] = True
    metrics: Snapshot


class HistoryResponse(BaseModel):
    success: Literal[True] = True
    history: list[Snapshot] = Field(description="Newest first")


class Alert(BaseModel):
    """A stored alert (SPEC section 6); probe incidents also carry ``service``/``resolved_at``."""

    model_config = ConfigDict(extra="allow")

    id: str
    rule: str
    severity: Literal["critical", "high", "medium", "low"]
    category: str
    title: str
    message: str
    metric: str | None
    value: float | None
    threshold: float | None
    period_start: str
    period_end: str
    triggered_at: str
    run_id: str | None
    notified: bool


class AlertsResponse(BaseModel):
    success: Literal[True] = True
    alerts: list[Alert] = Field(description="Newest first: triggered_at desc, then severity, then rule")


class CollectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_end: Instant | None = Field(
        default=None,
        description="The report covers the 7 days before this instant (at most 5 minutes from now: "
                    "a later one is refused with 422, a rule JSON Schema cannot state). Default: now, "
                    "to the second.",
    )
    send_email: StrictBool = Field(default=False, description="Also e-mail the report to the investors")


class CollectResponse(BaseModel):
    success: Literal[True] = True
    dag_id: str = Field(examples=["investor_metrics"])
    dag_run_id: str = Field(examples=["manual__2026-11-24T10:15:02.123456+00:00"])
    state: Literal["queued"] = "queued"


# --------------------------------------------------------------------------- the app
@asynccontextmanager
async def _lifespan(app: FastAPI):
    yield
    app.state.store.reset()  # the API server stops: close the pooled connections


app = FastAPI(
    title="ChatterFix investor metrics",
    version="1.0",
    description=API_DESCRIPTION,
    openapi_url=None,  # served below, behind Airflow's authentication like every route
    docs_url=None,
    redoc_url=None,
    lifespan=_lifespan,
)
app.state.store = queries.MetricsStore()


def _store() -> queries.MetricsStore:
    return app.state.store


def _json(body: dict, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def _error(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return _json({"success": False, "error": message}, status_code, headers)


def _json_bytes(body: bytes, request: Request) -> Response:
    """A 200 JSON response whose body is already serialised. A client that accepts gzip gets it
    compressed the way Airflow's GZipMiddleware would (which then passes it through untouched),
    from a small cache keyed by the body itself: the same snapshot is compressed once, and a
    changed one is a different key, so the cache can never answer with an outdated body."""
    headers = dict(NO_STORE)
    if (GZIP_MIN_BYTES <= len(body) <= GZIP_CACHE_MAX_BYTES
            and "gzip" in request.headers.get("accept-encoding", "")):
        body = _gzipped(body)
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type="application/json", headers=headers)


@lru_cache(maxsize=GZIP_CACHE_ENTRIES)
def _gzipped(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


# --------------------------------------------------------------------------- access control
@cache
def _multi_team() -> bool:
    """``[core] multi_team``: read once per API-server process (like Airflow, which reads its
    configuration at start-up; reading it costs more than the rest of the access check)."""
    from airflow.configuration import conf

    return conf.getboolean("core", "multi_team", fallback=False)


def _team_name() -> str | None:
    if not _multi_team():
        return None
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(queries.DAG_ID)


def _decides_in_memory() -> bool:
    """Whether the access check can run on the event loop: Airflow's SimpleAuthManager decides
    from the token's role alone, and without multi-team there is no team to look up. Any other
    auth manager may ask a database or a remote service (FAB, Keycloak), so its check runs in the
    thread pool like Airflow's own access checks."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    return not _multi_team() and type(get_auth_manager()) is SimpleAuthManager


def _dag_runs_access(method: Literal["GET", "POST"], what: str):
    def authorize(user: BaseUser) -> None:
        from airflow.api_fastapi.app import get_auth_manager

        allowed = get_auth_manager().is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=queries.DAG_ID, team_name=_team_name()),
            user=user,
        )
        if not allowed:
            raise HTTPException(403, f"Forbidden: {what} needs permission to "
                                     f"{'read' if method == 'GET' else 'trigger'} the runs of the DAG "
                                     f"{queries.DAG_ID!r}")

    async def check(user: GetUserDep) -> BaseUser:
        # Inline when it cannot block: a hand-off to the thread pool costs a request ~0.1 ms of
        # CPU (measured), about a tenth of what serving /metrics costs in-process.
        if _decides_in_memory():
            authorize(user)
        else:
            await run_in_threadpool(authorize, user)
        return user

    return check


def _same_origin_json(request: Request) -> None:
    """CSRF: a state-changing request that the browser's session cookie authenticates (no
    ``Authorization: Bearer`` header, Airflow's own precedence) must be same-origin JSON. A page of
    another site can make a browser send the cookie with a form or a "simple" request, but never
    with ``Content-Type: application/json`` (that needs a CORS preflight, which this API does not
    grant); and when the browser says where the request comes from (``Origin``,
    ``Sec-Fetch-Site``), it must be this origin. 403 otherwise. A request with a bearer token is
    not exposed to CSRF (a page of another site cannot set that header) and is not checked."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    if not request.cookies.get(COOKIE_NAME_JWT_TOKEN):
        return  # no credential at all: Airflow's authentication answers 401
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(403, "Forbidden: a request authenticated by the session cookie must send "
                                 "Content-Type: application/json (CSRF protection)")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        raise HTTPException(403, f"Forbidden: a request from another site ({fetch_site}) cannot use the "
                                 "session cookie (CSRF protection)")
    origin = request.headers.get("origin")
    if origin is not None and _origin_key(origin) not in _own_origins(request):
        raise HTTPException(403, "Forbidden: a request from another origin cannot use the session cookie "
                                 "(CSRF protection)")


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(url: str) -> tuple[str, int] | None:
    """(host, port) of an origin or URL; None for ``null`` or anything unparsable."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname.lower(), port


def _own_origins(request: Request) -> set[tuple[str, int]]:
    """This server as browsers address it: the request's own host (``Host``, or the
    ``X-Forwarded-Host`` a proxy set) and Airflow's ``[api] base_url`` when it is configured."""
    from airflow.configuration import conf

    scheme = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    own = set()
    for host in (request.headers.get("host"), request.headers.get("x-forwarded-host")):
        if host:
            key = _origin_key(f"{scheme}://{host.split(',')[0].strip()}")
            if key:
                own.add(key)
    base_url = conf.get("api", "base_url", fallback="")
    if base_url and (key := _origin_key(base_url)):
        own.add(key)
    return own


SameOriginJson = Depends(_same_origin_json)
Reader = Annotated[BaseUser, Depends(_dag_runs_access("GET", "reading the investor metrics"))]
Collector = Annotated[BaseUser, Depends(_dag_runs_access("POST", "collecting the investor metrics"))]


# --------------------------------------------------------------------------- errors
def _is_page(request: Request) -> bool:
    return request.url.path.rstrip("/").endswith("/page")


@app.exception_handler(StarletteHTTPException)  # Airflow's 401/403, and unknown paths / methods
async def _http_error(request: Request, exc: StarletteHTTPException):
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if _is_page(request):
        airflow_root = request.scope.get("root_path", "").removesuffix(queries.URL_PREFIX) + "/"
        return _page_error(exc.status_code, message, airflow_root, headers=exc.headers)
    return _error(exc.status_code, message, headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError):
    problems = []
    for error in exc.errors():
        source, *where = [str(part) for part in error.get("loc", ("request",))]
        name, msg = ".".join(where), error.get("msg", "invalid value")
        if source in ("query", "path", "header") and name:
            problems.append(f"{source} parameter {name!r}: {msg}")
        elif source == "body" and name:
            problems.append(f"body field {name!r}: {msg}")
        else:
            problems.append(f"{source}: {msg}")
    return _error(422, "invalid request: " + "; ".join(problems))


@app.exception_handler(queries.ParameterError)
async def _parameter_error(request: Request, exc: queries.ParameterError):
    return _error(422, str(exc))


@app.exception_handler(queries.NotFound)
async def _not_found(request: Request, exc: queries.NotFound):
    return _error(404, str(exc))


@app.exception_handler(queries.StoreUnavailable)
async def _unavailable(request: Request, exc: queries.StoreUnavailable):
    return _error(503, str(exc), headers={"Retry-After": "10"})


@app.exception_handler(queries.CollectRefused)
async def _refused(request: Request, exc: queries.CollectRefused):
    return _error(exc.status, str(exc), headers={"Retry-After": "10"} if exc.status == 503 else None)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):
    log.exception("investor API: unexpected error on %s %s", request.method, request.url.path)
    return _error(500, "internal error of the investor API; the API server log has the detail")


# --------------------------------------------------------------------------- routes
@app.get(
    "/metrics",
    summary="The latest investor metrics, one archived period, or the history",
    response_model=None,
    responses={200: {"model": MetricsResponse | HistoryResponse,
                     "description": "`metrics` (one snapshot) or, with `history`, `history` (newest first)"},
               404: {"model": ErrorResponse, "description": "No snapshot matches"}, **ERROR_RESPONSES},
)
def get_metrics(
    request: Request,
    user: Reader,
    period_end: Annotated[Instant | None, Query(
        description="The snapshot of the period ending at this instant: the weekly one, else the "
                    "on-demand one (or the one of `type`). With `history`: the newest snapshots ending "
                    "at or before it.",
    )] = None,
    history: Annotated[int | None, Query(
        ge=1, le=queries.HISTORY_MAX,
        description="Return this many snapshots of one series, newest first: weekly periods "
                    "(scheduled and backfill runs), or with `type=on_demand` the on-demand reports",
    )] = None,
    type: Annotated[Literal["weekly", "on_demand"] | None, Query(
        description="The series: `weekly` (scheduled and backfill periods) or `on_demand` (manual "
                    "runs). Without `history` and `period_end`: the latest snapshot of that series.",
    )] = None,
) -> Response:
    end = queries.parse_instant(period_end, "period_end")
    # The stored snapshot text goes out as it is: no parse, no re-serialisation.
    return _json_bytes(_store().run(
        lambda conn: queries.metrics_body(conn, period_end=end, history=history, series=type)), request)


@app.post(
    "/metrics/collect",
    summary="Collect the metrics now: queue a manual run of the investor_metrics DAG",
    status_code=202,
    dependencies=[SameOriginJson],
    response_model=None,
    responses={202: {"model": CollectResponse, "description": "The run is queued"},
               400: {"model": ErrorResponse, "description": "The body cannot be read (not UTF-8 JSON)"},
               404: {"model": ErrorResponse, "description": "The DAG is not loaded in Airflow"},
               409: {"model": ErrorResponse, "description": "The DAG cannot run now (import errors)"},
               **ERROR_RESPONSES},
)
def collect_metrics(
    request: Request,
    user: Collector,
    body: Annotated[CollectRequest | None, Body()] = None,
) -> JSONResponse:
    body = body or CollectRequest()
    now = datetime.now(timezone.utc)
    conf = queries.collect_conf(body.period_end, body.send_email, now=now)
    run = queries.create_manual_run(conf, user_name=user.get_name(), from_ui=bool(request.headers.get("referer")),
                                    now=now)
    log.info("investor API: %s queued %s (%s)", user.get_name(), run.dag_run_id, conf)
    return _json({"success": True, "dag_id": run.dag_id, "dag_run_id": run.dag_run_id, "state": run.state},
                 status_code=202)


@app.get(
    "/alerts",
    summary="Investor alerts, newest first",
    response_model=None,
    responses={200: {"model": AlertsResponse}, **ERROR_RESPONSES},
)
def get_alerts(
    user: Reader,
    severity: Annotated[list[SeverityList] | None, Query(
        description="Only these severities (critical, high, medium, low): repeat the parameter or "
                    "separate with commas",
    )] = None,
    since: Annotated[Instant | None, Query(
        description="Only alerts triggered at or after this instant",
    )] = None,
    limit: Annotated[int, Query(ge=1, le=queries.ALERTS_LIMIT_MAX, description="At most this many")]
    = queries.ALERTS_LIMIT_DEFAULT,
) -> JSONResponse:
    severities = queries.parse_severities(severity)
    since_at = queries.parse_instant(since, "since")
    return _json(_store().run(
        lambda conn: queries.alerts_answer(conn, severities=severities, since=since_at, limit=limit)))


@app.get(
    "/page",
    summary="The Investor metrics page of the Airflow UI",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "A self-contained HTML page"},
               401: {"content": {"text/html": {}}, "description": "No valid Airflow token: a page that says how "
                                                                  "to sign in"},
               403: {"content": {"text/html": {}}, "description": "No read access to the investor_metrics DAG"}},
)
def investor_page(user: Reader) -> HTMLResponse:
    text, csp = _page()
    return HTMLResponse(text, headers={**NO_STORE, "Content-Security-Policy": csp,
                                       "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"})


@app.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request, user: Reader) -> JSONResponse:
    return JSONResponse(_openapi(request.scope.get("root_path", "").rstrip("/")))


@cache
def _openapi(root_path: str) -> dict:
    document = get_openapi(
        title=app.title, version=app.version, description=API_DESCRIPTION, routes=app.routes,
        servers=[{"url": root_path or "/"}],
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
    return document


def _without_null(schema: dict) -> dict:
    """An optional query parameter is optional by its absence: a query string has no null, so
    ``anyOf: [X, {type: null}]`` (what ``str | None`` becomes) is documented as ``X``."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest}


# --------------------------------------------------------------------------- the page
@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: only its own inline script and style run, it
    talks only to this origin, and only Airflow's UI (same origin) may frame it."""
    text = PAGE_FILE.read_text(encoding="utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        return " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in found
        )

    csp = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'self'")
    return text, csp


def _page_error(status_code: int, message: str, airflow_root: str,
                headers: dict[str, str] | None = None) -> HTMLResponse:
    if status_code == 401:
        hint = (f"<a href='{html.escape(airflow_root, quote=True)}' target='_top'>Sign in to Airflow</a>, "
                "then open Investor metrics from the navigation.")
    else:
        hint = "Ask an Airflow administrator for access to the investor_metrics DAG."
    body = (f"<!doctype html><meta charset='utf-8'><title>Investor metrics</title>"
            f"<body style='font-family:sans-serif;padding:2rem'><h1>Investor metrics</h1>"
            f"<p>{html.escape(message)}</p><p>{hint}</p></body>")
    return HTMLResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})
