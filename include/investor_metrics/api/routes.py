"""The investor API's data routes: ``GET /metrics`` (JSON, or CSV with ``format=csv``),
``POST /metrics/collect``, ``GET /alerts``.

Each route checks access (``auth``), parses its parameters (``params``), and answers from the
metrics store (``queries``, on a pooled connection of ``request.app.state.store``) or queues a run
(``collect``). Refusals are exceptions that ``app``'s handlers turn into the API's error shape.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response

from include.investor_metrics.api import collect, queries
from include.investor_metrics.api.auth import Collector, Reader, SameOriginJson
from include.investor_metrics.api.params import (
    ALERTS_LIMIT_DEFAULT,
    ALERTS_LIMIT_MAX,
    HISTORY_MAX,
    CollectRequest,
    Instant,
    SeverityList,
    optional_instant,
    parse_severities,
)
from include.investor_metrics.api.pool import MetricsStore
from include.investor_metrics.api.responses import (
    CSV_CONTENT,
    ERROR_RESPONSES,
    AlertsResponse,
    CollectResponse,
    ErrorResponse,
    HistoryResponse,
    MetricsResponse,
    csv_response,
    json_bytes,
    json_response,
)

log = logging.getLogger(__name__)

router = APIRouter()


def _store(request: Request) -> MetricsStore:
    return request.app.state.store


@router.get(
    "/metrics",
    summary="The latest investor metrics, one archived period, or the history",
    response_model=None,
    responses={200: {"model": MetricsResponse | HistoryResponse, "content": CSV_CONTENT,
                     "description": "`metrics` (one snapshot) or, with `history`, `history` (newest "
                                    "first); with `format=csv`, the same snapshots as a CSV attachment "
                                    "(`text/csv`), one row each"},
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
        ge=1, le=HISTORY_MAX,
        description="Return this many snapshots of one series, newest first: weekly periods "
                    "(scheduled and backfill runs), or with `type=on_demand` the on-demand reports",
    )] = None,
    type: Annotated[Literal["weekly", "on_demand"] | None, Query(
        description="The series: `weekly` (scheduled and backfill periods) or `on_demand` (manual "
                    "runs). Without `history` and `period_end`: the latest snapshot of that series.",
    )] = None,
    format: Annotated[Literal["json", "csv"], Query(
        description="`json`, or `csv`: the same snapshots as a CSV attachment, one row each (newest "
                    "first), one column per scalar figure named by its dotted path (`financial.mrr`); "
                    "lists (cohorts, largest movements, alerts) are left out. Without `history`: "
                    "one row.",
    )] = "json",
) -> Response:
    end = optional_instant(period_end, "period_end")
    if format == "csv":
        snapshots = _store(request).run(
            lambda conn: queries.metrics_snapshots(conn, period_end=end, history=history, series=type))
        return csv_response(snapshots, type or ("weekly" if history is not None else "latest"))
    # The stored snapshot text goes out as it is: no parse, no re-serialisation.
    return json_bytes(_store(request).run(
        lambda conn: queries.metrics_body(conn, period_end=end, history=history, series=type)), request)


@router.post(
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
    conf = collect.collect_conf(body.period_end, body.send_email, now=now)
    run = collect.create_manual_run(conf, user_name=user.get_name(),
                                    from_ui=bool(request.headers.get("referer")), now=now)
    log.info("investor API: %s queued %s (%s)", user.get_name(), run.dag_run_id, conf)
    return json_response({"success": True, "dag_id": run.dag_id, "dag_run_id": run.dag_run_id,
                          "state": run.state}, status_code=202)


@router.get(
    "/alerts",
    summary="Investor alerts, newest first",
    response_model=None,
    responses={200: {"model": AlertsResponse}, **ERROR_RESPONSES},
)
def get_alerts(
    request: Request,
    user: Reader,
    severity: Annotated[list[SeverityList] | None, Query(
        description="Only these severities (critical, high, medium, low): repeat the parameter or "
                    "separate with commas",
    )] = None,
    since: Annotated[Instant | None, Query(
        description="Only alerts triggered at or after this instant",
    )] = None,
    limit: Annotated[int, Query(ge=1, le=ALERTS_LIMIT_MAX, description="At most this many")]
    = ALERTS_LIMIT_DEFAULT,
) -> JSONResponse:
    severities = parse_severities(severity)
    since_at = optional_instant(since, "since")
    return json_response(_store(request).run(
        lambda conn: queries.alerts_answer(conn, severities=severities, since=since_at, limit=limit)))
