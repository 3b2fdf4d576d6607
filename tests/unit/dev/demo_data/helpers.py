"""What the tests of ``dev/demo_data`` share: the data's fixed end and knob weeks, a scratch database."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from include.investor_metrics.db import connect
from include.investor_metrics.settings import PostgresSettings

END = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
START = END - timedelta(days=730)
OUTAGE_WEEK = date(2026, 10, 5)
SPIKE_WEEK = date(2026, 9, 14)
UTC = timezone.utc


@contextmanager
def scratch_database(pg_server: PostgresSettings):
    """A second fresh database (``fresh_database`` gives one per test)."""
    name = f"cfx_gen_{os.getpid()}_{secrets.token_hex(4)}"
    admin = connect(pg_server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresSettings(
            host=pg_server.host,
            port=pg_server.port,
            dbname=name,
            user=pg_server.user,
            password=pg_server.password,
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def scalar(cur, sql: str, params=None):
    cur.execute(sql, params)
    return cur.fetchone()[0]


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
