"""What the investor API answers with: the response models of its OpenAPI document, and the JSON
and CSV responses themselves.

Every answer carries ``Cache-Control: no-store``. An error is ``{"success": false, "error":
"<message>"}``. ``json_bytes`` sends a body that is already serialised (a stored snapshot's text)
and, to a client that accepts gzip, compresses it the way Airflow's GZipMiddleware would, from a
small cache keyed by the body itself (so it can never answer with an outdated body). ``csv_response``
sends snapshots as a CSV attachment (``csv_export``).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from include.investor_metrics.api import csv_export
from include.investor_metrics.contract import SEVERITIES

NO_STORE = {"Cache-Control": "no-store"}
# Airflow's API server compresses responses of at least 1024 bytes for clients that accept gzip
# (its GZipMiddleware, level 5). ``/metrics`` does it itself, once per distinct body.
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 5
GZIP_CACHE_ENTRIES = 64
GZIP_CACHE_MAX_BYTES = 64 * 1024  # larger bodies (long histories) are left to the middleware


CSV_MEDIA_TYPE = "text/csv"
CSV_CONTENT = {CSV_MEDIA_TYPE: {
    "schema": {"type": "string", "description": "RFC 4180 CSV, UTF-8: a header, then one row per snapshot"},
    "example": "period.start,period.end,period.type,timestamp,…,financial.mrr,…\r\n"
               "2026-11-15T09:00:00Z,2026-11-22T09:00:00Z,weekly,2026-11-22T09:00:00Z,…,41000.25,…\r\n",
}}


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="What went wrong, for a person to read")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse,
          "description": "No valid Airflow token (bearer header or `_token` cookie)"},
    403: {"model": ErrorResponse,
          "description": "The auth manager denies this access to the investor_metrics DAG (or, for a "
                         "request authenticated by the session cookie, it is not same-origin JSON)"},
    422: {"model": ErrorResponse, "description": "A parameter is malformed; the message names it"},
    503: {"model": ErrorResponse,
          "description": "The metrics store (or Airflow's metadata database) is unavailable"},
}


class Period(BaseModel):
    start: str = Field(examples=["2026-11-15T09:00:00Z"])
    end: str = Field(examples=["2026-11-22T09:00:00Z"])
    type: Literal["weekly", "backfill", "on_demand"]


class Snapshot(BaseModel):
    """A published snapshot, exactly as archived (SPEC section 7; more keys may be added). The
    sections of SPEC 4b are absent from snapshots published before they existed."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    generated_at: str
    period: Period
    system_health: dict[str, Any]
    ai_platform: dict[str, Any]
    financial: dict[str, Any]
    business_health: dict[str, Any]
    retention: dict[str, Any] | None = Field(
        default=None, description="SPEC 4b: nrr_12m, grr_12m, nrr_1m, grr_1m, logo_retention_12m, cohorts")
    segments: dict[str, Any] | None = Field(default=None, description="SPEC 4b: by_plan, keyed by plan")
    movements: dict[str, Any] | None = Field(default=None, description="SPEC 4b: largest (up to 10)")
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
    severity: Literal[SEVERITIES]
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


class CollectResponse(BaseModel):
    success: Literal[True] = True
    dag_id: str = Field(examples=["investor_metrics"])
    dag_run_id: str = Field(examples=["manual__2026-11-24T10:15:02.123456+00:00"])
    state: Literal["queued"] = "queued"


def json_response(body: dict, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={**NO_STORE, **(headers or {})})


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return json_response({"success": False, "error": message}, status_code, headers)


def json_bytes(body: bytes, request: Request) -> Response:
    """A 200 JSON response whose body is already serialised; gzip-compressed (cached by body) for
    a client that accepts it, when Airflow's middleware would compress it too."""
    headers = dict(NO_STORE)
    if (GZIP_MIN_BYTES <= len(body) <= GZIP_CACHE_MAX_BYTES
            and "gzip" in request.headers.get("accept-encoding", "")):
        body = _gzipped(body)
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type="application/json", headers=headers)


def csv_response(snapshots: list[dict], series: str) -> Response:
    """A 200 ``text/csv`` attachment of ``snapshots`` (rows in the given order), named after
    ``series`` and the days of their period ends."""
    name = csv_export.filename(snapshots, series)
    return Response(csv_export.csv_text(snapshots).encode("utf-8"), media_type=CSV_MEDIA_TYPE,
                    headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"',
                             "X-Content-Type-Options": "nosniff"})


@lru_cache(maxsize=GZIP_CACHE_ENTRIES)
def _gzipped(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
