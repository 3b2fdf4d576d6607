"""The binary COPY encoding of ``dev/demo_data/columns.py``, read back by a real PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np

from dev.demo_data.columns import (
    bool_column,
    encode_binary_copy,
    free_text_column,
    int_column,
    text_column,
    timestamp_column,
)
from dev.demo_data.params import NO_END, Window, epoch_us
from include.investor_metrics.db import connect
from tests.unit.dev.demo_data.helpers import END


def test_binary_copy_round_trip(fresh_database):
    window = Window(start_us=epoch_us(END), end_us=epoch_us(END) + 10**9)
    columns = [
        int_column("id", np.array([1, 2, 3]), null=np.array([False, True, False])),
        free_text_column("name", ["Acme Co.", "Ünïcode GmbH", ""]),
        text_column("kind", ("a", "bbb"), np.array([1, -1, 0])),
        timestamp_column("at", window, np.array([0, NO_END, 1_500_000])),
        bool_column("ok", np.array([True, False, True])),
        int_column("ms", np.array([7, -1, 2**31 - 1]), ">i4"),
        int_column("score", np.array([0, 10, 5]), ">i2"),
    ]
    conn = connect(fresh_database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE t (id bigint, name text, kind text, at timestamptz, ok boolean, "
                "ms integer, score smallint)"
            )
            cur.copy_expert(
                "COPY t FROM STDIN WITH (FORMAT binary)", io.BytesIO(encode_binary_copy(columns))
            )
            cur.execute("SELECT * FROM t ORDER BY score")
            rows = cur.fetchall()
    finally:
        conn.close()
    assert rows == [
        (1, "Acme Co.", "bbb", END, True, 7, 0),
        (3, "", "a", END + timedelta(seconds=1.5), True, 2**31 - 1, 5),
        (None, "Ünïcode GmbH", None, None, False, -1, 10),
    ]
