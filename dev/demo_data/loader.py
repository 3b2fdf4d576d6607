"""Loading the synthetic dataset into PostgreSQL, unless it is already there.

What it writes (one database): the SPEC section 3 source tables (created with
``include.investor_metrics.db.apply_source_schema``), ``investor_metrics.service_health_checks``
(``apply_metrics_schema``) and ``investor_metrics.demo_dataset``, one row saying which dataset is
loaded (created here).

"Unless already loaded": ``load`` records what it loaded in ``investor_metrics.demo_dataset``. When
the recorded dataset has the same parameters (and generator version) and ``customers`` /
``subscriptions`` still hold the recorded row counts, ``load`` does nothing and returns a summary
with ``loaded=False``. Otherwise it truncates the source tables and the health checks and reloads,
all in ONE transaction (readers see the old dataset or the new one, never half of one). Source
tables that hold rows this module did not record (a real application database, hand-made test rows)
are never truncated unless ``force=True``; ``force=True`` always reloads.

Loading uses binary ``COPY ... FROM STDIN`` in chunks of at most ``COPY_CHUNK_ROWS`` rows, generated
week by week, so memory stays flat whatever the scale; the tables' non-unique indexes are dropped
before the COPY and recreated after it, then the tables are analysed.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from dev.demo_data.columns import Chunk, encode_binary_copy
from dev.demo_data.dataset import chunk_count, generate
from dev.demo_data.params import REFERENCE_SPAN_DAYS, DatasetParams
from include.investor_metrics.contract import HEALTH_TABLE
from include.investor_metrics.db import apply_metrics_schema, apply_source_schema, connect
from include.investor_metrics.period import iso_utc
from include.investor_metrics.settings import PostgresSettings

log = logging.getLogger(__name__)

SOURCE_TABLES = ("customers", "subscriptions", "leads", "nps_responses", "usage_events", "ai_requests")
DATASET_TABLE = "investor_metrics.demo_dataset"
LOADED_TABLES = (*SOURCE_TABLES, HEALTH_TABLE)
COPY_CHUNK_ROWS = 500_000


@dataclass(frozen=True)
class LoadSummary:
    """What ``load`` did. ``loaded`` is False when the same dataset was already there."""

    params: DatasetParams
    loaded: bool
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        p = self.params
        what = (
            f"ChatterFix {p.scale} dataset (seed {p.seed}, {iso_utc(p.start)} → {iso_utc(p.end)}"
            f"{_knobs_text(p)})"
        )
        head = (
            f"Loaded {what} in {self.seconds:.1f} s"
            if self.loaded
            else f"{what} is already loaded; nothing to do (force=True / --force reloads it)"
        )
        width = max(len(t) for t in self.counts) if self.counts else 0
        lines = [f"  {table:<{width}}  {count:>12,}" for table, count in self.counts.items()]
        return "\n".join([head + ":", *lines])


def _knobs_text(p: DatasetParams) -> str:
    knobs = [f"{n} {getattr(p, n)}" for n in ("outage_week", "churn_spike_week") if getattr(p, n)]
    return "; " + ", ".join(knobs) if knobs else ""


class DatasetError(RuntimeError):
    """The database holds data this module did not load; it will not truncate it unasked."""


DATASET_DDL = """
CREATE TABLE IF NOT EXISTS investor_metrics.demo_dataset (
    dataset           text PRIMARY KEY DEFAULT 'chatterfix',
    scale             text        NOT NULL,
    seed              bigint      NOT NULL,
    end_at            timestamptz NOT NULL,
    span_days         integer     NOT NULL,
    outage_week       date,
    churn_spike_week  date,
    generator_version integer     NOT NULL,
    row_counts        jsonb       NOT NULL,
    seconds           double precision NOT NULL,
    loaded_at         timestamptz NOT NULL DEFAULT now()
)
"""
RECORDED_SQL = """
SELECT scale, seed, end_at, span_days, outage_week, churn_spike_week, generator_version, row_counts
  FROM investor_metrics.demo_dataset WHERE dataset = 'chatterfix'
"""
RECORD_SQL = """
INSERT INTO investor_metrics.demo_dataset
       (dataset, scale, seed, end_at, span_days, outage_week, churn_spike_week, generator_version,
        row_counts, seconds, loaded_at)
VALUES ('chatterfix', %(scale)s, %(seed)s, %(end_at)s, %(span_days)s, %(outage_week)s,
        %(churn_spike_week)s, %(generator_version)s, %(row_counts)s, %(seconds)s, now())
ON CONFLICT (dataset) DO UPDATE SET
       scale = EXCLUDED.scale, seed = EXCLUDED.seed, end_at = EXCLUDED.end_at,
       span_days = EXCLUDED.span_days, outage_week = EXCLUDED.outage_week,
       churn_spike_week = EXCLUDED.churn_spike_week, generator_version = EXCLUDED.generator_version,
       row_counts = EXCLUDED.row_counts, seconds = EXCLUDED.seconds, loaded_at = EXCLUDED.loaded_at
"""
SECONDARY_INDEXES_SQL = """
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.indrelid = ANY(%s::text[]::regclass[]) AND NOT i.indisunique
 ORDER BY n.nspname, c.relname
"""
# The tables a still-valid dataset must hold its recorded row counts in (cheap to count).
CHECKED_TABLES = ("customers", "subscriptions")


def load(
    settings: PostgresSettings,
    *,
    end: datetime,
    scale: str = "demo",
    seed: int = 42,
    span_days: int = REFERENCE_SPAN_DAYS,
    outage_week: date | str | None = None,
    churn_spike_week: date | str | None = None,
    force: bool = False,
    progress: bool = True,
) -> LoadSummary:
    """Load the dataset of these parameters into ``settings``' database, unless already loaded."""
    params = DatasetParams.build(
        end=end,
        scale=scale,
        seed=seed,
        span_days=span_days,
        outage_week=outage_week,
        churn_spike_week=churn_spike_week,
    )
    began = time.monotonic()
    conn = connect(settings)
    try:
        prepare_tables(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('investor_metrics.demo_dataset'))")
            recorded = recorded_dataset(cur)
            if not force and is_loaded(cur, params, recorded):
                conn.rollback()
                counts = {table: recorded["row_counts"][table] for table in LOADED_TABLES}
                summary = LoadSummary(params, False, counts, time.monotonic() - began)
                log.info("%s", summary.describe())
                return summary
            if recorded is None and not force:
                refuse_foreign_rows(cur)
            counts = replace_dataset(cur, params, progress)
            seconds = time.monotonic() - began
            record_dataset(cur, params, counts, seconds)
        conn.commit()
    finally:
        conn.close()
    summary = LoadSummary(params, True, counts, seconds)
    log.info("%s", summary.describe())
    return summary


def prepare_tables(conn) -> None:
    apply_source_schema(conn)
    apply_metrics_schema(conn)
    with conn.cursor() as cur:
        cur.execute(DATASET_DDL)
    conn.commit()


def recorded_dataset(cur) -> dict | None:
    cur.execute(RECORDED_SQL)
    row = cur.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cur.description]
    return dict(zip(names, row, strict=True))


def is_loaded(cur, params: DatasetParams, recorded: dict | None) -> bool:
    if recorded is None:
        return False
    wanted = params.as_record()
    if any(recorded[key] != value for key, value in wanted.items()):
        return False
    if not set(LOADED_TABLES) <= set(recorded["row_counts"]):
        return False
    return all(count_rows(cur, table) == recorded["row_counts"].get(table) for table in CHECKED_TABLES)


def count_rows(cur, table: str) -> int:
    from psycopg2 import sql

    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_identifier(table)))
    return cur.fetchone()[0]


def refuse_foreign_rows(cur) -> None:
    from psycopg2 import sql

    for table in SOURCE_TABLES:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(_identifier(table)))
        if cur.fetchone()[0]:
            raise DatasetError(
                f"table {table} holds rows that dev.demo_data.generator did not load (no record in "
                f"{DATASET_TABLE}); refusing to truncate it. Use force=True (--force) to replace them."
            )


def _identifier(table: str):
    from psycopg2 import sql

    return sql.Identifier(*table.split("."))


def replace_dataset(cur, params: DatasetParams, progress: bool) -> dict[str, int]:
    """Truncate, COPY the new rows in (secondary indexes off meanwhile), rebuild, analyse."""
    from psycopg2 import sql
    from tqdm import tqdm

    cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(_identifier, LOADED_TABLES))))
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
    indexes = drop_secondary_indexes(cur)
    counts = dict.fromkeys(LOADED_TABLES, 0)
    with tqdm(total=chunk_count(params) + 1, unit="chunk", disable=not progress, file=sys.stderr) as bar:
        for chunk in generate(params):
            bar.set_description(chunk.table.rpartition(".")[2])
            copy_chunk(cur, chunk)
            counts[chunk.table] += chunk.rows
            bar.update()
        bar.set_description("indexes")
        for definition in indexes:
            cur.execute(definition)
        cur.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(_identifier, LOADED_TABLES))))
        bar.update()
    return counts


def drop_secondary_indexes(cur) -> list[str]:
    """Drop the loaded tables' non-unique indexes; returns the statements that recreate them."""
    from psycopg2 import sql

    cur.execute(SECONDARY_INDEXES_SQL, (list(LOADED_TABLES),))
    found = cur.fetchall()
    for schema, name, _definition in found:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    return [definition for _schema, _name, definition in found]


def copy_chunk(cur, chunk: Chunk) -> None:
    """Binary COPY in pieces of at most ``COPY_CHUNK_ROWS`` rows. FREEZE: the tables were
    truncated in this transaction, so the rows can be written frozen (no later hint-bit rewrite)."""
    from psycopg2 import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary, FREEZE true)").format(
        _identifier(chunk.table), sql.SQL(", ").join(sql.Identifier(c.name) for c in chunk.columns)
    )
    for start in range(0, chunk.rows, COPY_CHUNK_ROWS):
        piece = [c.take(start, start + COPY_CHUNK_ROWS) for c in chunk.columns]
        cur.copy_expert(statement, io.BytesIO(encode_binary_copy(piece)), size=1 << 20)


def record_dataset(cur, params: DatasetParams, counts: dict[str, int], seconds: float) -> None:
    cur.execute(RECORD_SQL, {**params.as_record(), "row_counts": json.dumps(counts), "seconds": seconds})
