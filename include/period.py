"""The reporting period of a run, and calendar offsets in ``INVESTOR_TIMEZONE`` (SPEC sections 2, 4).

Every offset (7, 14, 28, 90 days, 1 month) is a *calendar* offset taken on the local wall clock of
the investor time zone, then turned back into an instant: a week across a DST change is 167 or 169
hours long. Month steps clamp to the month's last day (31 Mar − 1 month = 28/29 Feb); a local time
that does not exist (inside a spring-forward gap) moves forward by the gap, as pendulum does.
Nothing here reads the clock: the period depends only on the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pendulum

PERIOD_TYPES = {"scheduled": "weekly", "backfill": "backfill", "manual": "on_demand"}


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: every instant must carry its time zone")
    return value.astimezone(timezone.utc)


def calendar_offset(instant: datetime, tz, *, days: int = 0, months: int = 0) -> datetime:
    """``instant`` minus ``days``/``months`` on the local calendar of ``tz``, as a UTC datetime."""
    local = pendulum.instance(to_utc(instant)).in_timezone(tz)
    shifted = local.subtract(months=months, days=days)
    return to_utc(datetime.fromtimestamp(shifted.timestamp(), tz=timezone.utc))


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, with the time zone its calendar offsets are taken in."""

    start: datetime
    end: datetime
    type: str = "weekly"
    tz: str = "UTC"

    def offset(self, *, days: int = 0, months: int = 0) -> datetime:
        """``end`` minus a calendar offset, e.g. ``offset(days=28)`` → end − 28 days."""
        return calendar_offset(self.end, pendulum.timezone(self.tz), days=days, months=months)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def as_dict(self) -> dict:
        return {"start": iso_utc(self.start), "end": iso_utc(self.end), "type": self.type}


def iso_utc(value: datetime) -> str:
    """``2026-11-22T09:00:00Z`` (whole seconds; the archive's timestamp format)."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def weekly_period(end: datetime, tz, period_type: str = "weekly") -> Period:
    """The week [end − 7 calendar days, end)."""
    tz = pendulum.timezone(tz) if isinstance(tz, str) else tz
    end = to_utc(end)
    return Period(start=calendar_offset(end, tz, days=7), end=end, type=period_type, tz=tz.name)


def parse_period_end(raw: str) -> datetime:
    """An ISO 8601 instant with an offset (``2026-11-22T09:00:00Z``); a clear error otherwise."""
    text = (raw or "").strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"period_end {raw!r} is not an ISO 8601 date-time; expected e.g. 2026-11-22T09:00:00Z "
            "or 2026-11-22T10:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(
            f"period_end {raw!r} has no UTC offset; expected e.g. 2026-11-22T09:00:00Z "
            "or 2026-11-22T10:00:00+01:00"
        )
    return to_utc(parsed)


def period_for_run(
    *,
    run_type: str,
    tz,
    data_interval_end: datetime | None = None,
    run_after: datetime | None = None,
    period_end_param: str | None = None,
) -> Period:
    """The one place a run's period is decided.

    scheduled / backfill: the week that ends at the data-interval end.
    manual (UI trigger or API): the week before ``period_end`` (default: when the run was triggered).
    """
    run_type = getattr(run_type, "value", run_type)
    period_type = PERIOD_TYPES.get(run_type, "on_demand")
    if period_type == "on_demand":
        if period_end_param:
            end = parse_period_end(period_end_param)
        elif run_after is not None:
            end = to_utc(run_after)
        elif data_interval_end is not None:
            end = to_utc(data_interval_end)
        else:
            raise ValueError("a manual run needs a period_end param or a run_after time")
    else:
        if data_interval_end is None:
            raise ValueError(f"a {run_type} run has no data interval: cannot tell which week it reports")
        end = to_utc(data_interval_end)
    return weekly_period(end, tz, period_type)
