"""Reading the extract's frames (``weekly/extract.py``): customer ids, the total row, a count, and
the millisecond figures PostgreSQL computed (2 decimals, half up)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pandas as pd


def customer_ids(values: pd.Series) -> set[int]:
    return {int(v) for v in values.dropna()}


def total_row(frame: pd.DataFrame) -> pd.Series | None:
    totals = frame[frame["is_total"].astype(bool)]
    return totals.iloc[0] if len(totals) else None


def count(row: pd.Series | None, column: str) -> int:
    return 0 if row is None else int(row[column])


def milliseconds(value) -> float | None:
    """A millisecond figure from PostgreSQL (float) to 2 decimals; None when there is none."""
    if value is None or pd.isna(value):
        return None
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
