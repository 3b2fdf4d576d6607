"""The calendar instants of the depth figures (SPEC 4b).

Every instant is an aware UTC datetime derived from the period by ``include.investor_metrics.period``
(``Period.offset`` / ``calendar_offset``, i.e. calendar steps in ``INVESTOR_TIMEZONE``):
``end − 12 months`` and ``end − 1 month`` (the retention bases), the 12 most recent calendar months
whose local start is before ``end`` (the cohorts) and each cohort's checkpoints
(``month start + k months`` before ``end``, then ``end``). The extract binds them.

``exact_sum`` sums MRR integers (twelfths of a cent) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pendulum

from include.investor_metrics.period import Period, calendar_offset, to_utc

COHORT_MONTHS = 12
INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class CohortMonth:
    """A calendar month in the investor time zone: [start, next_start), with its checkpoints."""

    label: str  # YYYY-MM (local)
    start: datetime
    next_start: datetime
    checkpoints: tuple[datetime, ...]


@dataclass(frozen=True)
class DepthInstants:
    """The period's instants (UTC) and its 12 cohort months."""

    start: datetime
    end: datetime
    base_12m: datetime
    base_1m: datetime
    cohorts: tuple[CohortMonth, ...]  # oldest first


def cohort_months(end: datetime, tz, count: int = COHORT_MONTHS) -> tuple[CohortMonth, ...]:
    """The ``count`` most recent calendar months of ``tz`` whose start is before ``end``, oldest first."""
    tz = pendulum.timezone(tz) if isinstance(tz, str) else tz
    end = to_utc(end)
    latest = pendulum.instance(end).in_timezone(tz).start_of("month")
    latest = to_utc(datetime.fromtimestamp(latest.timestamp(), tz=end.tzinfo))
    if latest >= end:  # end is exactly a month start: that month has not begun before end
        latest = calendar_offset(latest, tz, months=1)
    months = []
    for back in range(count - 1, -1, -1):
        start = calendar_offset(latest, tz, months=back)
        checkpoints = []
        k = 1
        while (point := calendar_offset(start, tz, months=-k)) < end:
            checkpoints.append(point)
            k += 1
        local = pendulum.instance(start).in_timezone(tz)
        months.append(CohortMonth(
            label=f"{local.year:04d}-{local.month:02d}",
            start=start,
            next_start=calendar_offset(start, tz, months=-1),
            checkpoints=(*checkpoints, end),
        ))
    return tuple(months)


def depth_instants(period: Period) -> DepthInstants:
    return DepthInstants(
        start=to_utc(period.start),
        end=to_utc(period.end),
        base_12m=period.offset(months=12),
        base_1m=period.offset(months=1),
        cohorts=cohort_months(period.end, period.tz),
    )


def exact_sum(values) -> int:
    """Σ of integers as a Python int (numpy's int64 sum when it cannot wrap)."""
    array = np.asarray(values, dtype="int64")
    if len(array) == 0:
        return 0
    if int(np.abs(array).max()) * len(array) <= INT64_MAX:
        return int(array.sum())
    return sum(int(v) for v in array.tolist())
