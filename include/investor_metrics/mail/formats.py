"""How the e-mails show values: numbers (money, counts, percentages, changes), local dates and
period labels in the investor time zone, and the colours of good and bad news.

Pure functions: a value that is null, missing, a bool or NaN is shown as ``n/a`` (or ``—`` for a
change), never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta, tzinfo

from include.investor_metrics.period import Period, as_instant, tz_label

# Colours (inline CSS: e-mail clients ignore <style> blocks often enough not to rely on them).
GOOD, BAD, NEUTRAL = "#15803d", "#b91c1c", "#6b7280"
SEVERITY_STYLE = {  # badge background, card tint
    "critical": ("#b91c1c", "#fef2f2"),
    "high": ("#c2410c", "#fff7ed"),
    "medium": ("#a16207", "#fefce8"),
    "low": ("#1d4ed8", "#eff6ff"),
}


def finite_number(value) -> float | None:
    """A finite number, or None (null, missing, a bool, NaN are not numbers to report)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def lookup(snapshot: Mapping | None, path: Sequence[str]):
    """The value at ``path`` in a snapshot (nested dicts), None when any step is missing."""
    node = snapshot
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def money(value: float, decimals: int = 0) -> str:
    """``$32,110``, ``-$2,000``, ``$252.83``."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{decimals}f}"


_FORMATS = {
    # kind: (value formatter, display decimals of a change, change unit)
    "money": (lambda v: money(v), 0),
    "money2": (lambda v: money(v, 2), 2),
    "count": (lambda v: f"{v:,.0f}", 0),
    "pct0": (lambda v: f"{v:.0f}%", 0),
    "pct1": (lambda v: f"{v:.1f}%", 1),
    "pct2": (lambda v: f"{v:.2f}%", 2),
    "ratio": (lambda v: f"{v:.2f}", 2),
    "num1": (lambda v: f"{v:.1f}", 1),
    "ms": (lambda v: f"{v:,.0f} ms", 0),
}


def format_value(value, fmt: str) -> str:
    """``value`` in the format ``fmt`` (a key of ``_FORMATS``), ``n/a`` when it is no number."""
    number = finite_number(value)
    return "n/a" if number is None else _FORMATS[fmt][0](number)


def format_change(current, previous, fmt: str) -> tuple[str, float | None]:
    """The change text and the (display-rounded) delta, None when there is nothing to compare."""
    cur, prev = finite_number(current), finite_number(previous)
    if cur is None or prev is None:
        return "—", None
    decimals = _FORMATS[fmt][1]
    delta = round(cur - prev, decimals)
    if delta == 0:
        return "no change", 0.0
    sign = "+" if delta > 0 else "-"
    if fmt in ("money", "money2"):
        text = f"{sign}{money(abs(delta), decimals)}"
    elif fmt in ("pct0", "pct1", "pct2"):
        text = f"{sign}{abs(delta):.{decimals}f} pp"
    elif fmt == "ms":
        text = f"{sign}{abs(delta):,.0f} ms"
    elif fmt == "count":
        text = f"{sign}{abs(delta):,.0f}"
    else:
        text = f"{sign}{abs(delta):.{decimals}f}"
    if fmt in ("money", "money2", "count") and prev != 0:
        text += f" ({(cur - prev) / abs(prev) * 100:+.1f}%)"
    return text, delta


def period_bounds(period) -> tuple[datetime, datetime]:
    """(start, end) of a ``Period``, or of a snapshot's ``period`` dict of ISO strings."""
    if isinstance(period, Period):
        return period.start, period.end
    if isinstance(period, Mapping):
        return as_instant(period["start"]), as_instant(period["end"])
    raise TypeError("period must be an include.investor_metrics.period.Period or a dict with start/end, "
                    f"got {type(period).__name__}")


def local_date(instant: datetime, tz: tzinfo) -> str:
    """``22 Nov 2026``: the local date of ``instant`` in ``tz``."""
    local = instant.astimezone(tz)
    return f"{local.day} {local:%b %Y}"


def week_ending_label(period_end: datetime, tz: tzinfo) -> str:
    """``22 Nov 2026``: the local date the week ends on. A week that ends at local midnight ends on
    the day before (a week to Monday 00:00 is the week ending Sunday)."""
    local = period_end.astimezone(tz)
    if local.time() == time(0):
        local -= timedelta(days=1)
    return f"{local.day} {local:%b %Y}"


def period_label(start: datetime, end: datetime, tz: tzinfo) -> str:
    """``15 Nov 2026 09:00 – 22 Nov 2026 09:00 (UTC)``: a period in local time, with its zone."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{s.day} {s:%b %Y %H:%M} – {e.day} {e:%b %Y %H:%M} ({tz_label(tz)})"


def text_table(rows: Sequence[Sequence[str]], indent: str = "  ", right: Sequence[int] = ()) -> list[str]:
    """Rows of cells as plain-text lines in aligned columns (the columns in ``right`` right-aligned)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]
