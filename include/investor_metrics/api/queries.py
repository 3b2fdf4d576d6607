"""What the investor API answers, apart from the web layer (SPEC section 11).

``include/investor_metrics/api/app.py`` is the FastAPI layer (routes, authentication, HTTP codes); this module
holds what it calls, so tests can use it without a server:

- parameter parsing (``parse_instant``, ``parse_severities``, ``collect_conf``): a bad value is a
  ``ParameterError`` naming the parameter and the expected format;
- the answers (``metrics_body``, ``alerts_answer``), read from the metrics store through
  ``include.investor_metrics.weekly.snapshots`` / ``include.investor_metrics.weekly.alerts.store`` (indexed: snapshots by their period-end primary key,
  alerts by ``triggered_at``), never from the archive files. ``metrics_body`` is the response
  body itself: the snapshots' stored JSON text spliced in, never parsed and serialised again
  (``metrics_answer`` is the same, parsed);
- ``MetricsStore``: a small thread-safe pool of read-only connections to the metrics database,
  found the way the pipeline finds it (Airflow connection ``investor_metrics_db``, else
  ``chatterfix_db``, else the seed's ``DB_*`` variables). A database that cannot be reached is a
  ``StoreUnavailable`` whose message holds no host, port, user or password;
- ``create_manual_run``: a manual run of the weekly DAG through Airflow's own
  ``airflow.api.common.trigger_dag`` (the helper behind the execution API's trigger route), inside
  the API server process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any, TypeVar

from include.investor_metrics import period
from include.investor_metrics.contract import SEVERITIES
from include.investor_metrics.settings import (
    CHATTERFIX_CONN_ID,
    DEFAULT_DB_NAME,
    METRICS_CONN_ID,
    ConfigError,
    PostgresSettings,
    postgres_settings_from_env,
)

log = logging.getLogger(__name__)

DAG_ID = "investor_metrics"  # the weekly DAG (dags/investor_metrics.py)
URL_PREFIX = "/api/investor"  # where the plugin mounts the API in the Airflow API server
HISTORY_MAX = 520  # ten years of weeks
ALERTS_LIMIT_DEFAULT = 100
ALERTS_LIMIT_MAX = 1000

POOL_SIZE_VARIABLE = "INVESTOR_API_POOL_SIZE"
DEFAULT_POOL_SIZE = 5
POOL_WAIT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 10_000
# libpq options an Airflow connection's extra may carry through (TLS and the like).
LIBPQ_EXTRA_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "target_session_attrs",
                    "application_name")

T = TypeVar("T")


# --------------------------------------------------------------------------- errors
class ParameterError(ValueError):
    """A request parameter is malformed; ``str()`` names it and the expected format."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class NotFound(LookupError):
    """Nothing in the store matches the request."""


class StoreUnavailable(RuntimeError):
    """The metrics store cannot answer now. The message is safe to show to a client."""


# --------------------------------------------------------------------------- parameters
def parse_instant(raw: str | None, parameter: str) -> datetime | None:
    """``include.investor_metrics.period.parse_instant`` (ISO 8601 with seconds and a UTC offset, years 1970–9999
    in UTC) as an aware UTC datetime; None for an absent value; a ``ParameterError`` naming
    ``parameter`` otherwise."""
    if raw is None:
        return None
    try:
        return period.parse_instant(raw, parameter)
    except period.InstantError as exc:
        raise ParameterError(parameter, str(exc)) from None


def parse_severities(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """``severity`` given once or more, each one severity or several separated by commas
    (``high,critical``; lower case, no spaces: what the OpenAPI document's pattern says), as a
    tuple of distinct severities in the given order; None when not given."""
    if values is None:
        return None
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            if item not in SEVERITIES:
                shown = repr(item) if len(item) <= 40 else repr(item[:30]) + f"… ({len(item)} characters)"
                raise ParameterError(
                    "severity", f"severity must be one of {', '.join(SEVERITIES)} (repeat the parameter "
                    f"or separate values with commas, no spaces), got {shown}"
                )
            if item not in found:
                found.append(item)
    return tuple(found) or None


iso_z = period.format_instant  # ``2026-11-22T09:00:00Z`` (fractions of a second kept when there are any)


def collect_conf(period_end: str | None, send_email: bool, *, now: datetime) -> dict[str, Any]:
    """The ``conf`` of a manual run of the weekly DAG (its params ``period_end``, ``send_email``).
    ``period_end`` is normalised to UTC with ``Z``; a week that has not ended by ``now`` (beyond
    ``period.FUTURE_TOLERANCE`` of clock skew) is refused, as the run itself would refuse it."""
    conf: dict[str, Any] = {"send_email": bool(send_email)}
    end = parse_instant(period_end, "period_end")
    if end is not None:
        try:
            period.refuse_future(end, now, "period_end")
        except period.InstantError as exc:
            raise ParameterError("period_end", str(exc)) from None
        conf["period_end"] = iso_z(end)
    return conf


# --------------------------------------------------------------------------- answers
def _undefined_table(exc: BaseException) -> bool:
    return getattr(exc, "pgcode", None) == "42P01"  # undefined_table: the pipeline never ran here


def _stored_snapshots(conn, *, period_end: datetime | None, history: int | None,
                      series: str | None) -> str | list[str]:
    """The stored text of the snapshot(s) ``GET /metrics`` answers with: one (latest, or of
    ``period_end``) or, with ``history``, a list newest first of one series (``series``, default
    the weekly one). ``NotFound`` if none."""
    from include.investor_metrics.weekly import snapshots as store
    from include.investor_metrics.weekly.series import SERIES

    raw = _RawJsonConnection(conn)
    try:
        if history is not None:
            series = series or "weekly"
            rows = store.history(raw, history, until=period_end, series=series)
            if not rows:
                raise NotFound(
                    f"no {_series_words(series)} snapshot is stored" if period_end is None
                    else f"no {_series_words(series)} snapshot ends at or before {iso_z(period_end)}"
                )
            return [_json_text(row) for row in rows]
        if period_end is not None:
            # The weekly period of that end, else the on-demand report (or the one series asked for).
            snapshot = None
            for candidate in (series,) if series else SERIES:
                snapshot = store.snapshot_for(raw, period_end, series=candidate)
                if snapshot is not None:
                    break
            if snapshot is None:
                words = f" {_series_words(series)}" if series else ""
                raise NotFound(f"no{words} snapshot for the period ending {iso_z(period_end)}")
        elif series is not None:
            rows = store.history(raw, 1, series=series)
            snapshot = rows[0] if rows else None
            if snapshot is None:
                raise NotFound(f"no {_series_words(series)} snapshot has been published yet")
        else:
            snapshot = store.latest_snapshot(raw)
            if snapshot is None:
                raise NotFound("no snapshot has been published yet: run the investor_metrics DAG")
    except Exception as exc:
        if _undefined_table(exc):
            raise NotFound("no snapshot has been published yet: the metrics store is empty") from None
        raise
    return _json_text(snapshot)


def _series_words(series: str) -> str:
    return "on-demand" if series == "on_demand" else series


def metrics_body(conn, *, period_end: datetime | None = None, history: int | None = None,
                 series: str | None = None) -> bytes:
    """The body of ``GET /metrics`` as JSON bytes: ``{"success":true,"metrics":<snapshot>}`` or,
    with ``history``, ``{"success":true,"history":[<snapshot>, ...]}`` (newest first, of the
    weekly series or of ``series``, ending at or before ``period_end`` if given). Without
    ``history``: the latest snapshot (of either series, or of ``series``), or the one ending at
    ``period_end`` (the weekly one, else the on-demand one, or the one of ``series``). Each
    snapshot is the text the store keeps (a ``json`` column: PostgreSQL checked it is valid JSON
    and kept its key order), spliced in without being parsed and serialised again. ``NotFound``
    if none."""
    found = _stored_snapshots(conn, period_end=period_end, history=history, series=series)
    if isinstance(found, list):
        return b'{"success":true,"history":[' + ",".join(found).encode() + b"]}"
    return b'{"success":true,"metrics":' + found.encode() + b"}"


def metrics_answer(conn, *, period_end: datetime | None = None, history: int | None = None,
                   series: str | None = None) -> dict:
    """``metrics_body`` as a dict (snapshots exactly as stored, key order kept)."""
    return json.loads(metrics_body(conn, period_end=period_end, history=history, series=series))


def _json_text(value: Any) -> str:
    # The stored text; a value some other typecaster already parsed is serialised again.
    return value if isinstance(value, str) else json.dumps(value)


_JSON_OID = 114  # PostgreSQL's ``json`` type (``jsonb`` is 3802; the snapshots column is ``json``)


@cache
def _json_as_text():
    import psycopg2.extensions

    return psycopg2.extensions.new_type((_JSON_OID,), "INVESTOR_JSON_TEXT", lambda value, cursor: value)


class _RawJsonConnection:
    """``conn`` for ``include.investor_metrics.weekly.snapshots``'s readers, except that ``json`` columns come back as the
    text PostgreSQL keeps instead of parsed objects (the typecaster is registered on each cursor,
    so the pooled connection itself is unchanged)."""

    __slots__ = ("_conn",)

    def __init__(self, conn):
        self._conn = conn

    def cursor(self, *args, **kwargs):
        import psycopg2.extensions

        cursor = self._conn.cursor(*args, **kwargs)
        psycopg2.extensions.register_type(_json_as_text(), cursor)
        return cursor


def alerts_answer(conn, *, severities: tuple[str, ...] | None = None, since: datetime | None = None,
                  limit: int = ALERTS_LIMIT_DEFAULT) -> dict:
    """The body of ``GET /alerts``: stored alerts newest first (triggered_at desc, then severity,
    then rule), optionally of some severities only, triggered at or after ``since``, at most
    ``limit``."""
    from include.investor_metrics.weekly.alerts import store as alert_store
    from include.investor_metrics.weekly.alerts.evaluate import sort_alerts

    try:
        if not severities:
            found = alert_store.all_alerts(conn, since=since, limit=limit)
        else:
            # One indexed query per severity, merged in the store's own order.
            found = sort_alerts(
                alert for severity in severities
                for alert in alert_store.all_alerts(conn, severity=severity, since=since, limit=limit)
            )[:limit]
    except Exception as exc:
        if _undefined_table(exc):
            found = []
        else:
            raise
    return {"success": True, "alerts": found}


# --------------------------------------------------------------------------- the metrics store
@dataclass(frozen=True)
class StoreTarget:
    """Where the metrics database is, and libpq options from the Airflow connection's extra."""

    settings: PostgresSettings
    options: Mapping[str, str] = field(default_factory=dict)
    source: str = "DB_* variables"


def _airflow_connection(conn_id: str):
    """The Airflow connection ``conn_id`` as the API server sees it (environment, secrets
    backends, metadata database), or None when it is not defined."""
    try:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.models.connection import Connection
    except ImportError:  # outside an Airflow installation: only the DB_* variables
        return None
    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None


def resolve_store_target(env: Mapping[str, str] | None = None,
                         lookup: Callable[[str], Any] = _airflow_connection) -> StoreTarget:
    """The metrics database, resolved like the pipeline does (``include.investor_metrics.db.airflow_connection``):
    connection ``investor_metrics_db``, else ``chatterfix_db``, else ``DB_*``. Raises
    ``ConfigError`` (naming the variable) when none is set."""
    for conn_id in (METRICS_CONN_ID, CHATTERFIX_CONN_ID):
        conn = lookup(conn_id)
        if conn is None:
            continue
        if not conn.host:
            raise ConfigError(f"the Airflow connection {conn_id!r} has no host")
        extra = conn.extra_dejson if isinstance(getattr(conn, "extra_dejson", None), Mapping) else {}
        return StoreTarget(
            settings=PostgresSettings(
                host=conn.host, port=int(conn.port or 5432), dbname=conn.schema or DEFAULT_DB_NAME,
                user=conn.login or None, password=conn.password or None,
            ),
            options={k: str(extra[k]) for k in LIBPQ_EXTRA_KEYS if extra.get(k) not in (None, "")},
            source=f"Airflow connection {conn_id!r}",
        )
    return StoreTarget(settings=postgres_settings_from_env(env))


def pool_size(env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(POOL_SIZE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_POOL_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ConfigError(f"{POOL_SIZE_VARIABLE} must be a whole number from 1 to 100, got {raw!r}")
    return int(raw)


class MetricsStore:
    """A small pool of read-only, autocommit connections to the metrics database.

    At most ``size`` connections are open; a request waits up to ``wait`` seconds for one. The
    target is resolved on the first connection (never at import) and again after ``reset()`` or a
    failed connection attempt. A connection that fails is dropped; a query that fails on a reused
    connection (the server restarted) is retried once on a fresh one.
    """

    def __init__(self, *, size: int | None = None, wait: float = POOL_WAIT_SECONDS,
                 resolve: Callable[[], StoreTarget] = resolve_store_target):
        self._size = size
        self._wait = wait
        self._resolve = resolve
        self._lock = threading.Lock()
        self._slots: threading.BoundedSemaphore | None = None
        self._idle: list = []
        self._target: StoreTarget | None = None

    # ------------------------------------------------------------- connections
    def _slots_semaphore(self) -> threading.BoundedSemaphore:
        with self._lock:
            if self._slots is None:
                try:
                    size = self._size or pool_size()
                except ConfigError as exc:
                    raise StoreUnavailable(f"the metrics store is not configured: {exc}") from None
                self._slots = threading.BoundedSemaphore(size)
            return self._slots

    def _current_target(self) -> StoreTarget:
        target = self._target
        if target is None:
            # Outside the lock: a secrets backend may be slow, and idle connections stay usable.
            target = self._resolve()
            log.info("investor API: metrics store from %s (%s)", target.source,
                     target.settings.public_description())
            with self._lock:
                self._target = target
        return target

    def _open(self):
        import psycopg2

        from include.investor_metrics.db import connect

        try:
            target = self._current_target()
        except ConfigError as exc:
            raise StoreUnavailable(f"the metrics store is not configured: {exc}") from None
        try:
            conn = connect(
                target.settings, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name="investor-api",
                # Read-only sessions: the API never writes the store; a runaway query is cut short.
                options=f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}",
                **target.options,
            )
        except psycopg2.Error as exc:
            with self._lock:
                self._target = None  # look the target up again next time (it may have moved)
            log.warning("investor API: cannot connect to the metrics store (%s): %s",
                        target.settings.public_description(), str(exc).strip())
            raise StoreUnavailable(
                "the metrics store is unavailable: its database cannot be reached; try again later"
            ) from None
        conn.autocommit = True
        return conn

    @contextmanager
    def _lease(self):
        """A pooled connection for the duration of the block (``_Lease``)."""
        slots = self._slots_semaphore()
        if not slots.acquire(timeout=self._wait):
            raise StoreUnavailable(
                f"the metrics store is busy: no database connection was free within {self._wait:g} s"
            )
        lease = None
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            lease = _Lease(conn, reused=True) if conn is not None else _Lease(self._open(), reused=False)
            yield lease
        finally:
            if lease is not None:
                if lease.broken or lease.conn.closed:
                    _close_quietly(lease.conn)
                else:
                    with self._lock:
                        self._idle.append(lease.conn)
            slots.release()

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on a pooled connection. Database trouble becomes
        ``StoreUnavailable`` (logged here with its detail; the client's message has none)."""
        import psycopg2

        for attempt in (1, 2):
            try:
                with self._lease() as lease:
                    try:
                        return work(lease.conn)
                    except (psycopg2.OperationalError, psycopg2.InterfaceError):
                        lease.broken = True
                        if lease.reused and attempt == 1:
                            continue  # a stale pooled connection (server restarted): once more, fresh
                        raise
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                log.warning("investor API: metrics store query failed: %s", exc)
                raise StoreUnavailable(
                    "the metrics store is unavailable: the database did not answer; try again later"
                ) from None
            except psycopg2.Error:
                log.exception("investor API: metrics store query failed")
                raise StoreUnavailable(
                    "the metrics store could not answer this request; the API server log has the detail"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def reset(self) -> None:
        """Close the idle connections and resolve the target again on next use (after the Airflow
        connection or the DB_* variables changed)."""
        with self._lock:
            idle, self._idle, self._target = self._idle, [], None
        for conn in idle:
            _close_quietly(conn)


@dataclass
class _Lease:
    conn: Any
    reused: bool
    broken: bool = False


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may fail; it is gone either way
        pass


# --------------------------------------------------------------------------- manual runs
@dataclass(frozen=True)
class ManualRun:
    dag_id: str
    dag_run_id: str
    state: str


class CollectRefused(RuntimeError):
    """Airflow refused the run; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_manual_run(conf: Mapping[str, Any], *, user_name: str | None, from_ui: bool,
                      now: datetime | None = None) -> ManualRun:
    """Queue a manual run of the weekly DAG with ``conf`` (its params are validated by Airflow),
    the way Airflow's own trigger routes do, recording who asked."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists, ParamValidationError
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType


    triggered_by = DagRunTriggeredByType.UI if from_ui else DagRunTriggeredByType.REST_API
    with create_session(scoped=False) as session:
        model = session.get(DagModel, DAG_ID)
        if model is None or model.is_stale:
            raise CollectRefused(404, f"the DAG {DAG_ID!r} is not loaded in Airflow (not parsed yet?)")
        if model.has_import_errors:
            raise CollectRefused(409, f"the DAG {DAG_ID!r} has import errors and cannot run: see "
                                      "the Airflow UI's import errors")
        try:
            run = trigger_dag(
                DAG_ID,
                triggered_by=triggered_by,
                run_type=DagRunType.MANUAL,
                triggering_user_name=user_name,
                run_after=now or datetime.now(timezone.utc),
                conf=dict(conf),
                session=session,
            )
        except DagNotFound:
            raise CollectRefused(404, f"the DAG {DAG_ID!r} is not loaded in Airflow (not parsed yet?)") from None
        except DagRunAlreadyExists:
            raise CollectRefused(409, "a run with the same id already exists: try again") from None
        except ParamValidationError as exc:
            raise CollectRefused(422, f"the DAG refused the parameters: {exc}") from None
        if run is None:  # pragma: no cover - trigger_dag returns the run it created
            raise CollectRefused(409, f"Airflow did not create a run of {DAG_ID!r}")
        session.flush()
        return ManualRun(dag_id=run.dag_id, dag_run_id=run.run_id, state=str(getattr(run.state, "value", run.state)))
