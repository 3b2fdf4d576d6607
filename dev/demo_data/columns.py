"""Rows as columns ready for PostgreSQL's binary ``COPY``: per-row big-endian bytes and lengths,
encoded for a whole chunk at once (no Python loop over rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dev.demo_data.params import NO_END, SECOND, Window

UNIX_TO_PG_EPOCH = 946_684_800 * SECOND  # 2000-01-01, the zero of PostgreSQL's binary timestamps


@dataclass
class Column:
    """One column of a COPY: per-row big-endian bytes and the byte length (-1 for NULL)."""

    name: str
    data: np.ndarray  # (rows, width) uint8
    lengths: np.ndarray  # (rows,) int32

    def take(self, start: int, stop: int) -> Column:
        return Column(self.name, self.data[start:stop], self.lengths[start:stop])


def int_column(name: str, values: np.ndarray, dtype: str = ">i8", null: np.ndarray | None = None) -> Column:
    data = np.ascontiguousarray(values, dtype=dtype)
    n = len(data)
    lengths = np.full(n, data.itemsize, dtype=np.int32)
    if null is not None:
        lengths[null] = -1
    return Column(name, data.view(np.uint8).reshape(n, data.itemsize), lengths)


def timestamp_column(name: str, window: Window, offsets: np.ndarray) -> Column:
    """Offsets from the window start; ``NO_END`` becomes NULL."""
    offsets = np.asarray(offsets, dtype=np.int64)
    null = offsets == NO_END
    pg_us = np.where(null, 0, offsets + (window.start_us - UNIX_TO_PG_EPOCH))
    return int_column(name, pg_us, ">i8", null=null if null.any() else None)


def bool_column(name: str, values: np.ndarray) -> Column:
    return int_column(name, np.asarray(values, dtype=np.uint8), "u1")


def text_column(name: str, labels: Sequence[str], codes: np.ndarray) -> Column:
    """Text from a small vocabulary; code -1 is NULL."""
    encoded = [label.encode() for label in labels]
    width = max(len(b) for b in encoded)
    table = np.zeros((len(encoded) + 1, width), dtype=np.uint8)  # last row: NULL
    for i, b in enumerate(encoded):
        table[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    label_lengths = np.array([len(b) for b in encoded] + [-1], dtype=np.int32)
    codes = np.where(np.asarray(codes) < 0, len(encoded), codes)
    return Column(name, table[codes], label_lengths[codes])


def free_text_column(name: str, values: Sequence[str]) -> Column:
    encoded = np.array([v.encode() for v in values], dtype=bytes)
    n, width = len(encoded), max(encoded.dtype.itemsize, 1)
    data = np.frombuffer(encoded.tobytes(), dtype=np.uint8).reshape(n, width) if n else np.zeros((0, width))
    lengths = np.array([len(v) for v in encoded], dtype=np.int32)
    return Column(name, data.astype(np.uint8), lengths)


PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
PG_COPY_TRAILER = b"\xff\xff"


def encode_binary_copy(columns: Sequence[Column]) -> bytes:
    """PostgreSQL's binary COPY format for these rows: each row is laid out in a padded matrix,
    then the padding is dropped in one vectorised selection (no Python loop over rows)."""
    n = len(columns[0].lengths)
    widths = [4 + c.data.shape[1] for c in columns]
    rows = np.empty((n, 2 + sum(widths)), dtype=np.uint8)
    keep = np.empty(rows.shape, dtype=bool)
    rows[:, :2] = np.frombuffer(len(columns).to_bytes(2, "big"), dtype=np.uint8)
    keep[:, :2] = True
    at = 2
    for column, width in zip(columns, widths, strict=True):
        rows[:, at : at + 4] = column.lengths.astype(">i4").view(np.uint8).reshape(n, 4)
        rows[:, at + 4 : at + width] = column.data
        keep[:, at : at + width] = np.arange(width) < (4 + np.maximum(column.lengths, 0))[:, None]
        at += width
    return PG_COPY_HEADER + rows[keep].tobytes() + PG_COPY_TRAILER


@dataclass
class Chunk:
    """Rows of one table."""

    table: str
    columns: list[Column]

    @property
    def rows(self) -> int:
        return len(self.columns[0].lengths)
