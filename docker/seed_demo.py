"""Load the ChatterFix demo data set, once (the ``airflow-init`` service of ``docker-compose.yaml``).

- Source (the seed's ``DB_*`` variables; by default the ``chatterfix_cmms`` database of the compose
  PostgreSQL): the synthetic data set of ``dev/demo_data/generator.py`` at ``DEMO_SCALE`` (``demo``), two
  years up to now (floored to the UTC hour), unless a data set is already recorded there. A restart
  of the stack therefore never reloads nor moves the data; ``docker compose down -v`` starts over.
  The generator refuses to overwrite tables holding rows it did not write (a real database).
- Metrics store (the Airflow connection ``investor_metrics_db`` given as
  ``AIRFLOW_CONN_INVESTOR_METRICS_DB``, a database of its own): its schema, and, while its health-check
  table is empty, the data set's health checks. The generator writes them next to the source tables;
  in production the health-probe DAG writes them into the metrics store, where the weekly DAG reads
  them.

Run from the project root (``/opt/airflow`` in the image) so that ``include`` imports.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dev.demo_data import generator, loader  # noqa: E402
from include.investor_metrics.db import apply_metrics_schema, connect  # noqa: E402
from include.investor_metrics.settings import ConfigError, PostgresSettings, postgres_settings_from_env  # noqa: E402

HEALTH_TABLE = "investor_metrics.service_health_checks"
HEALTH_COLUMNS = "service, checked_at, ok, response_ms, status_code, error"


def recorded_dataset(source: PostgresSettings) -> dict | None:
    conn = connect(source)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('investor_metrics.demo_dataset') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            return loader.recorded_dataset(cur)
    finally:
        conn.close()


def load_source(source: PostgresSettings) -> None:
    recorded = recorded_dataset(source)
    if recorded is not None:
        print(f"demo data already loaded in {source.public_description()} "
              f"({recorded['scale']} scale, up to {recorded['end_at']:%Y-%m-%d %H:%M} UTC): kept")
        return
    end = generator.default_end()
    scale = os.environ.get("DEMO_SCALE", "").strip() or "demo"
    print(f"loading the ChatterFix {scale} data set up to {end:%Y-%m-%d %H:%M} UTC "
          f"into {source.public_description()}", flush=True)
    summary = loader.load(source, end=end, scale=scale, seed=42, progress=False)
    print(summary.describe(), flush=True)


def seed_metrics_store(source: PostgresSettings, metrics_uri: str) -> None:
    import psycopg2

    metrics = psycopg2.connect(metrics_uri, connect_timeout=10)
    src = connect(source)
    try:
        apply_metrics_schema(metrics)
        with metrics.cursor() as cur:
            cur.execute(f"SELECT EXISTS (SELECT FROM {HEALTH_TABLE})")
            if cur.fetchone()[0]:
                print("metrics store: health checks already present: kept")
                return
        started = time.monotonic()
        with tempfile.TemporaryFile() as buffer:
            with src.cursor() as cur:
                cur.copy_expert(
                    f"COPY (SELECT {HEALTH_COLUMNS} FROM {HEALTH_TABLE}) TO STDOUT (FORMAT binary)", buffer
                )
            buffer.seek(0)
            with metrics.cursor() as cur:
                cur.copy_expert(f"COPY {HEALTH_TABLE} ({HEALTH_COLUMNS}) FROM STDIN (FORMAT binary)", buffer)
                rows = cur.rowcount
                cur.execute(f"ANALYZE {HEALTH_TABLE}")
        metrics.commit()
        print(f"metrics store: {rows:,} demo health checks copied in {time.monotonic() - started:.1f} s")
    finally:
        src.close()
        metrics.close()


def main() -> int:
    try:
        source = postgres_settings_from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        load_source(source)
        metrics_uri = os.environ.get("AIRFLOW_CONN_INVESTOR_METRICS_DB", "").strip()
        if metrics_uri:
            seed_metrics_store(source, metrics_uri)
    except (ValueError, loader.DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
