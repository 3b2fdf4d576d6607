"""The reporting period of a run, and calendar offsets in ``INVESTOR_TIMEZONE`` (SPEC sections 2, 4).

Every offset (7, 14, 28, 90 days, 1 month) is a *calendar* offset taken on the local wall clock of
the investor time zone, then turned back into an instant: a week across a DST change is 167 or 169
hours long. Month steps clamp to the month's last day (31 Mar − 1 month = 28/29 Feb); a local time
that does not exist (inside a spring-forward gap) moves forward by the gap, as pendulum does.
Nothing here reads the clock: the period depends only on the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

import pendulum

PERIOD_TYPES = {"scheduled": "weekly", "backfill": "backfill", "manual": "on_demand"}


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: every instant must carry its time zone")
    return value.astimezone(timezone.utc)


def as_instant(value: datetime | str) -> datetime:
    """An instant this project wrote itself (a store column, a snapshot's ISO string, an XCom) as an
    aware datetime: a datetime with its time zone as is, a string parsed by ``parse_instant``; a
    naive datetime is refused (``ValueError``)."""
    if isinstance(value, datetime):
        to_utc(value)  # refuses a naive one
        return value
    return parse_instant(str(value), "instant")


def tz_label(tz: tzinfo) -> str:
    """The IANA name of a time zone (``Europe/Berlin``), as the e-mails and the page print it."""
    return getattr(tz, "name", None) or getattr(tz, "key", None) or str(tz)


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


def file_stamp(value: datetime) -> str:
    """``2026-11-22_09-00-00``: an instant in UTC as the archive's file and folder names carry it
    (SPEC section 7)."""
    return to_utc(value).strftime("%Y-%m-%d_%H-%M-%S")


def weekly_period(end: datetime, tz, period_type: str = "weekly") -> Period:
    """The week [end − 7 calendar days, end)."""
    tz = pendulum.timezone(tz) if isinstance(tz, str) else tz
    end = to_utc(end)
    return Period(start=calendar_offset(end, tz, days=7), end=end, type=period_type, tz=tz.name)


# ------------------------------------------------------------------------- instants
# One syntax for every instant a person gives (the DAG's ``period_end`` param, the investor API's
# ``period_end`` and ``since``): RFC 3339 / ISO 8601 with seconds and an offset, e.g.
# ``2026-11-22T09:00:00Z`` or ``2026-11-22T10:00:00+01:00``, fractions of a second up to 6 digits,
# written in the years 1970–9999. ``INSTANT_PATTERN`` is that syntax as a regular expression (ECMA
# 262 and Python alike: ASCII digits only; Python applies it with ``fullmatch``), the one the DAG's
# param and the API's OpenAPI document declare. ``parse_instant`` accepts exactly the strings that
# match it and are real calendar dates (what JSON Schema's ``format: date-time`` adds: no 30
# February), and each of them is an instant of the years 1970–9999 in UTC: on the range's two edge
# days an offset that could carry the instant out of it is not part of the syntax (on 1970-01-01
# only ``Z``, ``±00:00`` or a negative offset; on 9999-12-31 only ``Z``, ``±00:00`` or a positive one).
INSTANT_EXAMPLE = "2026-11-22T09:00:00Z or 2026-11-22T10:00:00+01:00"
MIN_YEAR, MAX_YEAR = 1970, 9999
# An on-demand period may end this far past the run's trigger time (clock skew), not further.
FUTURE_TOLERANCE = timedelta(minutes=5)

_DAY = "(?:0[1-9]|[12][0-9]|3[01])"
_MONTH = "(?:0[1-9]|1[0-2])"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?"
_OFFSET = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_INNER_DATES = "|".join([
    f"1970-(?:01-(?:0[2-9]|[12][0-9]|3[01])|(?:0[2-9]|1[0-2])-{_DAY})",  # 1970 but its first day
    f"(?:197[1-9]|19[89][0-9]|[2-8][0-9]{{3}}|9[0-8][0-9]{{2}}|99[0-8][0-9]|999[0-8])-{_MONTH}-{_DAY}",
    f"9999-(?:(?:0[1-9]|1[01])-{_DAY}|12-(?:0[1-9]|[12][0-9]|30))",  # 9999 but its last day
])
INSTANT_PATTERN = (
    f"^(?:(?:{_INNER_DATES})T{_TIME}(?:Z|[+-]{_OFFSET})"
    f"|1970-01-01T{_TIME}(?:Z|[+-]00:00|-{_OFFSET})"
    f"|9999-12-31T{_TIME}(?:Z|[+-]00:00|\\+{_OFFSET}))$"
)
_INSTANT = re.compile(INSTANT_PATTERN)
# The same shape with any year and any two-digit offset: to tell "out of range" from "malformed".
_INSTANT_SHAPE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?$"
)


class InstantError(ValueError):
    """An instant given by a person is refused; ``str()`` names ``parameter`` and says why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class InstantOutOfRange(InstantError):
    """The instant is not within the years 1970–9999 in UTC."""


class InstantInFuture(InstantError):
    """The instant is later than allowed (a period that has not ended yet)."""


def _shown(raw) -> str:
    """``raw`` quoted for a message, cut short when it is long (a message echoes no megabyte)."""
    text = repr(raw)
    return text if len(text) <= 80 else text[:60] + f"…' ({len(raw)} characters)"


def parse_instant(raw: str, parameter: str = "period_end") -> datetime:
    """``raw`` (``INSTANT_PATTERN``) as an aware UTC datetime; an ``InstantError`` naming
    ``parameter`` otherwise (``InstantOutOfRange`` outside the years 1970–9999 in UTC, never an
    ``OverflowError``)."""
    text = raw if isinstance(raw, str) else ""
    shown = _shown(raw)
    shape = _INSTANT_SHAPE.fullmatch(text)
    if shape is None:
        raise InstantError(parameter, f"{parameter} {shown} is not an ISO 8601 date-time with seconds; "
                                      f"expected e.g. {INSTANT_EXAMPLE}")
    if shape["offset"] is None:
        raise InstantError(parameter, f"{parameter} {shown} has no UTC offset; "
                                      f"expected e.g. {INSTANT_EXAMPLE}")
    out_of_range = InstantOutOfRange(
        parameter, f"{parameter} {shown} is outside the years {MIN_YEAR}–{MAX_YEAR} (in UTC): give an "
                   f"instant from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, e.g. {INSTANT_EXAMPLE}")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        if text.startswith("0000-"):
            raise out_of_range from None
        raise InstantError(parameter, f"{parameter} {shown} is not a real date and time (month 01–12, a day "
                                      f"of that month, hour 00–23, offset up to ±23:59); expected e.g. "
                                      f"{INSTANT_EXAMPLE}") from None
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:
        raise out_of_range from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise out_of_range
    if not _INSTANT.fullmatch(text):
        # In range once converted, but written in a year outside 1970–9999 or, on an edge day, with
        # an offset the syntax leaves out (see INSTANT_PATTERN).
        raise InstantOutOfRange(
            parameter, f"{parameter} {shown}: write an instant of the years {MIN_YEAR}–{MAX_YEAR} in UTC "
                       f"(on 1970-01-01 and 9999-12-31 with Z), e.g. {format_instant(utc)}")
    return utc


def parse_period_end(raw: str) -> datetime:
    """``parse_instant`` for the ``period_end`` parameter."""
    return parse_instant(raw, "period_end")


def format_instant(value: datetime) -> str:
    """``2026-11-22T09:00:00Z``; fractions of a second kept when there are any
    (``parse_instant(format_instant(x)) == x`` for every instant of the years 1970–9999)."""
    utc = to_utc(value)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


def whole_second(value: datetime) -> datetime:
    """``value`` in UTC, truncated to the whole second."""
    return to_utc(value).replace(microsecond=0)


def refuse_future(end: datetime, reference: datetime, parameter: str = "period_end") -> datetime:
    """``end`` unless it is later than ``reference`` + ``FUTURE_TOLERANCE`` (clock skew): a report
    covers a period that has ended, else an ``InstantInFuture`` naming ``parameter``."""
    if to_utc(end) > to_utc(reference) + FUTURE_TOLERANCE:
        raise InstantInFuture(
            parameter, f"{parameter} {format_instant(end)} is in the future (later than "
                       f"{format_instant(whole_second(reference))} + {FUTURE_TOLERANCE.seconds // 60} "
                       "minutes): a report covers the 7 days before an instant that has passed")
    return to_utc(end)


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
    manual (UI trigger or API): the week before ``period_end`` (``parse_instant``; refused when it is
    later than ``run_after`` + ``FUTURE_TOLERANCE``), default: ``run_after`` (when the run was
    triggered) truncated to the whole second, the precision of every stored instant, so that the
    report can be fetched by its own ``period.end``.
    """
    run_type = getattr(run_type, "value", run_type)
    period_type = PERIOD_TYPES.get(run_type, "on_demand")
    if period_type == "on_demand":
        if period_end_param:
            end = parse_instant(period_end_param, "period_end")
            if run_after is not None:
                refuse_future(end, run_after, "period_end")
        elif run_after is not None:
            end = whole_second(run_after)
        elif data_interval_end is not None:
            end = whole_second(data_interval_end)
        else:
            raise ValueError("a manual run needs a period_end param or a run_after time")
    else:
        if data_interval_end is None:
            raise ValueError(f"a {run_type} run has no data interval: cannot tell which week it reports")
        end = to_utc(data_interval_end)
    return weekly_period(end, tz, period_type)
