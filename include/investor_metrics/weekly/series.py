"""The two series of reports (SPEC section 2): ``weekly`` (scheduled and backfill weeks) and
``on_demand`` (manual reports). A report of one series never replaces one of the other, even with
the same period end: snapshots, archive files and alerts are keyed by series
(docs/adr/on-demand-and-weekly-series.md)."""

from __future__ import annotations

SERIES = ("weekly", "on_demand")
PERIOD_TYPES = {"weekly": "weekly", "backfill": "weekly", "on_demand": "on_demand"}


def series_of(period_type: str) -> str:
    """The series a period type belongs to: ``weekly`` and ``backfill`` → ``weekly``;
    ``on_demand`` → ``on_demand``."""
    try:
        return PERIOD_TYPES[period_type]
    except KeyError:
        raise ValueError(
            f"period type must be one of {', '.join(PERIOD_TYPES)}, got {period_type!r}"
        ) from None


def checked_series(series: str) -> str:
    """``series`` itself, or ValueError when it is not one of ``SERIES``."""
    if series not in SERIES:
        raise ValueError(f"series must be one of {', '.join(SERIES)}, got {series!r}")
    return series
