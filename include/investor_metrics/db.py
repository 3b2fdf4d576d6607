"""Database plumbing shared by the pipeline, the demo stack and the tests.

``connect`` opens a plain psycopg2 connection (command-line tools and tests). Inside Airflow tasks
the pipeline goes through the Postgres provider instead (``postgres_hook``), so that an Airflow
connection, when defined, wins over the seed's ``DB_*`` variables (SPEC section 10).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from include.investor_metrics.settings import (
    CHATTERFIX_CONN_ID,
    METRICS_CONN_ID,
    PostgresSettings,
    postgres_settings_from_env,
)

SQL_DIR = Path(__file__).resolve().parent / "sql"


def dict_rows(cur) -> list[dict]:
    """The cursor's remaining rows as dicts, whatever its row type (tuples, psycopg 3 dict rows)."""
    names = [d[0] for d in cur.description]
    return [dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True))
            for row in cur.fetchall()]


def read_sql(name: str) -> str:
    """The text of ``include/investor_metrics/sql/<name>``, ``name`` a path of a concern's folder:
    ``read_sql("alerts/upsert.sql")``."""
    return (SQL_DIR / name).read_text()


def connect(settings: PostgresSettings, **kwargs):
    import psycopg2

    params = {"host": settings.host, "port": settings.port, "dbname": settings.dbname}
    if settings.user:
        params["user"] = settings.user
    if settings.password:
        params["password"] = settings.password
    params.setdefault("connect_timeout", 10)
    params.update(kwargs)
    return psycopg2.connect(**params)


def apply_source_schema(conn) -> None:
    """Create the ChatterFix source tables (demo and tests; production already has them)."""
    with conn.cursor() as cur:
        cur.execute(read_sql("schema/source.sql"))
    conn.commit()


def apply_metrics_schema(conn) -> None:
    """Create/upgrade the project's own ``investor_metrics`` schema, once at a time."""
    with conn.cursor() as cur:
        # Parallel backfill runs may all try this at once; DDL under one advisory lock.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('investor_metrics.schema'))")
        cur.execute(read_sql("schema/metrics.sql"))
    conn.commit()


def airflow_connection(conn_id: str):
    """The Airflow connection ``conn_id`` if defined the Airflow way, else one built from the
    seed's ``DB_*`` variables (both the source and the metrics store default to them)."""
    from airflow.sdk import Connection

    try:
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # pragma: no cover - older SDK layout
        from airflow.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        pass
    if conn_id == METRICS_CONN_ID:
        # The metrics store defaults to the source database (SPEC section 3).
        try:
            return Connection.get(CHATTERFIX_CONN_ID)
        except AirflowNotFoundException:
            pass
    settings = postgres_settings_from_env()
    return Connection(
        conn_id=conn_id,
        conn_type="postgres",
        host=settings.host,
        port=settings.port,
        schema=settings.dbname,
        login=settings.user,
        password=settings.password,
    )


def postgres_hook(conn_id: str = CHATTERFIX_CONN_ID):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=conn_id, connection=airflow_connection(conn_id))
