"""The calendar instants of the depth figures (SPEC 4b) and the per-instant MRR they are read at.

Every instant is an aware UTC datetime derived from the period by ``include.investor_metrics.period``
(``Period.offset`` / ``calendar_offset``, i.e. calendar steps in ``INVESTOR_TIMEZONE``):
``end − 12 months`` and ``end − 1 month`` (the retention bases), the 12 most recent calendar months
whose local start is before ``end`` (the cohorts) and each cohort's checkpoints
(``month start + k months`` before ``end``, then ``end``). ``DepthInstants.all`` is the sorted list
the extract binds as a ``timestamptz[]``.

``mrr_at(customer_mrr, t)``: the MRR (twelfths of a cent, > 0 only) per customer as of ``t``, read
from the ``customer_mrr`` frame of ``depth/extract.py``; ``exact_sum`` sums such integers exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
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
    start: datetime
    end: datetime
    base_12m: datetime
    base_1m: datetime
    cohorts: tuple[CohortMonth, ...]  # oldest first

    @property
    def cohorts_from(self) -> datetime:
        """The start of the oldest cohort month: first paid instants from here on are in a cohort."""
        return self.cohorts[0].start

    def all(self) -> list[datetime]:
        """Every instant an MRR is read at, sorted, unique."""
        found = {self.start, self.end, self.base_12m, self.base_1m}
        for cohort in self.cohorts:
            found.update(cohort.checkpoints)
        return sorted(found)


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


def mrr_at(customer_mrr: pd.DataFrame, t: datetime) -> pd.Series:
    """MRR (twelfths of a cent) per customer with MRR > 0 as of ``t``; index customer_id."""
    rows = customer_mrr[customer_mrr["as_of"] == pd.Timestamp(to_utc(t))]
    series = pd.Series(
        rows["mrr_twelfths"].to_numpy(dtype="int64"),
        index=pd.Index(rows["customer_id"].to_numpy(dtype="int64"), name="customer_id"),
        name="mrr_twelfths",
    )
    if not series.index.is_unique:
        raise ValueError(f"customer_mrr has several rows for one customer as of {t}")
    return series


def exact_sum(values) -> int:
    """Σ of integers as a Python int (numpy's int64 sum when it cannot wrap)."""
    array = np.asarray(values, dtype="int64")
    if len(array) == 0:
        return 0
    if int(np.abs(array).max()) * len(array) <= INT64_MAX:
        return int(array.sum())
    return sum(int(v) for v in array.tolist())
