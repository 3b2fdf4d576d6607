"""The investor API's connection pool to the metrics database.

``MetricsStore`` keeps a few read-only, autocommit connections (``INVESTOR_API_POOL_SIZE``, default
5) to the metrics database, found the way the pipeline finds it: the Airflow connection
``investor_metrics_db``, else ``chatterfix_db``, else the seed's ``DB_*`` variables. Any database
trouble is a ``StoreUnavailable`` (503) whose message holds no host, port, user or password.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from include.investor_metrics.db import connect
from include.investor_metrics.settings import (
    CHATTERFIX_CONN_ID,
    DEFAULT_DB_NAME,
    METRICS_CONN_ID,
    ConfigError,
    PostgresSettings,
    postgres_settings_from_env,
)

log = logging.getLogger(__name__)

POOL_SIZE_VARIABLE = "INVESTOR_API_POOL_SIZE"
DEFAULT_POOL_SIZE = 5
POOL_WAIT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 10_000
# libpq options an Airflow connection's extra may carry through (TLS and the like).
LIBPQ_EXTRA_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "target_session_attrs",
                    "application_name")

T = TypeVar("T")


class StoreUnavailable(RuntimeError):
    """The metrics store cannot answer now. The message is safe to show to a client."""


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
    """The metrics database, resolved like the pipeline does
    (``include.investor_metrics.db.airflow_connection``): connection ``investor_metrics_db``, else
    ``chatterfix_db``, else ``DB_*``. Raises ``ConfigError`` (naming the variable) when none is set."""
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
