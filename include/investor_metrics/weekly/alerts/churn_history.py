"""The history ``churn_spike`` compares with: churned customers of the weeks before a period, from
the metrics store where a snapshot of that calendar week is stored, else computed from the source
with the same definition, so the answer does not depend on the order in which backfill runs finish.
(Always ``CHURN_SPIKE_WEEKS`` weeks: a week before any data has 0 churned.)"""

from __future__ import annotations

import logging
from datetime import datetime

import pendulum

from include.investor_metrics.db import dict_rows, read_sql
from include.investor_metrics.period import Period, calendar_offset, to_utc, weekly_period
from include.investor_metrics.weekly import extract
from include.investor_metrics.weekly.alerts.rules import CHURN_SPIKE_WEEKS
from include.investor_metrics.weekly.metrics.revenue import churned_customers

log = logging.getLogger(__name__)


def previous_churned_customers(
    metrics_conn, source_conn, period: Period, weeks: int = CHURN_SPIKE_WEEKS
) -> list[int]:
    """churned_customers of the ``weeks`` weeks before ``period``, oldest first. Week k ends at
    period end − 7k calendar days (the period's time zone); a stored snapshot counts only when it
    is of that same calendar week (``investor_metrics.snapshots``), the others come from the
    subscriptions extract (``metrics.revenue.churned_customers``)."""
    tz = pendulum.timezone(period.tz)
    ends = [calendar_offset(period.end, tz, days=7 * k) for k in range(weeks, 0, -1)]
    periods = {end: weekly_period(end, period.tz) for end in ends}
    with metrics_conn.cursor() as cur:
        cur.execute(read_sql("alerts/previous_churned.sql"), {"period_ends": ends})
        stored = {to_utc(row["period_end"]): row for row in dict_rows(cur)}
    churned: dict[datetime, int] = {}
    for end, week in periods.items():
        row = stored.get(end)
        if row and row["churned_customers"] is not None and to_utc(row["period_start"]) == week.start:
            churned[end] = int(row["churned_customers"])
    missing = [end for end in ends if end not in churned]
    if missing:
        # One subscriptions extract spanning every missing week: it holds each row any of those
        # weeks can see, and churned customers only look at subscriptions.
        span = Period(start=min(periods[e].start for e in missing), end=max(missing), tz=period.tz)
        subscriptions = extract.run_query(
            source_conn, "extract/subscriptions.sql", extract.period_bounds(span),
            extract.SUBSCRIPTIONS_COLUMNS,
        )
        for end in missing:
            churned[end] = churned_customers(subscriptions, periods[end].start, end)
        log.info("churned customers of %d previous week(s) computed from the source", len(missing))
    return [churned[end] for end in ends]

