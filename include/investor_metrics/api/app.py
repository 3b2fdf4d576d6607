"""The investor API (SPEC section 11) assembled: the FastAPI app that
``plugins/investor_metrics_plugin.py`` mounts at ``/api/investor`` inside Airflow's API server, its
error handlers and its OpenAPI document.

=======  ==========================  ==========================================================
method   path                        answer
=======  ==========================  ==========================================================
GET      ``/metrics``                latest snapshot (either series); ``?period_end=`` one period
                                     (the weekly one, else the on-demand one); ``?history=N`` the
                                     N newest weekly periods (1..520), newest first; ``type``
                                     (``weekly``, ``on_demand``) picks the series; ``format=csv``
                                     the same snapshots as CSV rows (``csv_export``)
POST     ``/metrics/collect``        202: a queued manual run of ``investor_metrics``; optional
                                     JSON body ``{"period_end": ISO 8601, "send_email": false}``
GET      ``/alerts``                 alerts newest first; ``severity`` (repeat or comma-separate),
                                     ``since`` (ISO 8601), ``limit`` (default 100, max 1000)
GET      ``/page``                   the "Investor metrics" page of the Airflow UI (HTML)
GET      ``/openapi.json``           this API's OpenAPI document (read access, like ``/metrics``)
=======  ==========================  ==========================================================

Every route needs an Airflow user with access to the DAG (``auth``: 401, 403). The OpenAPI
document describes each parameter exactly (``params``): what it allows the API accepts, except a
``period_end`` to collect more than 5 minutes in the future (a rule of the clock that JSON Schema
cannot state; 422). Errors are ``{"success": false, "error": "<message>"}``: 422 for a bad
parameter (the message names it and the expected format), 404 when nothing matches, 503 when the
metrics store or Airflow's metadata database cannot answer. No response carries a traceback, a
host name or a password.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import cache

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.investor_metrics.api import URL_PREFIX, page, routes
from include.investor_metrics.api.auth import Reader
from include.investor_metrics.api.collect import CollectRefused
from include.investor_metrics.api.params import ParameterError
from include.investor_metrics.api.pool import MetricsStore, StoreUnavailable
from include.investor_metrics.api.queries import NotFound
from include.investor_metrics.api.responses import error_response
from include.investor_metrics.period import InstantError

log = logging.getLogger(__name__)

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
app.state.store = MetricsStore()
app.include_router(routes.router)
app.include_router(page.router)


# --------------------------------------------------------------------------- errors
@app.exception_handler(StarletteHTTPException)  # Airflow's 401/403, and unknown paths / methods
async def _http_error(request: Request, exc: StarletteHTTPException):
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if page.is_page(request):
        airflow_root = request.scope.get("root_path", "").removesuffix(URL_PREFIX) + "/"
        return page.page_error(exc.status_code, message, airflow_root, headers=exc.headers)
    return error_response(exc.status_code, message, headers=exc.headers)


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
    return error_response(422, "invalid request: " + "; ".join(problems))


@app.exception_handler(InstantError)
@app.exception_handler(ParameterError)
async def _parameter_error(request: Request, exc: InstantError | ParameterError):
    return error_response(422, str(exc))


@app.exception_handler(NotFound)
async def _not_found(request: Request, exc: NotFound):
    return error_response(404, str(exc))


@app.exception_handler(StoreUnavailable)
async def _unavailable(request: Request, exc: StoreUnavailable):
    return error_response(503, str(exc), headers={"Retry-After": "10"})


@app.exception_handler(CollectRefused)
async def _refused(request: Request, exc: CollectRefused):
    return error_response(exc.status, str(exc), headers={"Retry-After": "10"} if exc.status == 503 else None)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):
    log.exception("investor API: unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error of the investor API; the API server log has the detail")


# --------------------------------------------------------------------------- the OpenAPI document
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
