"""The data floor: the SQL the run reads its data with (the extract files, the alert step's churn
history) and the SQL GX sent in the validation step, run directly with psycopg2; medians."""

from __future__ import annotations

import statistics
import time

from dev.bench.weekly.config import (
    ALERTS_TASK,
    END_ISO,
)
from include.investor_metrics.settings import PostgresSettings
from include.investor_metrics.weekly import task_ids as ids

BUSINESS = ids.EXTRACT_BUSINESS


def bench_period():
    from include.investor_metrics.period import period_for_run

    return period_for_run(run_type="manual", tz="UTC", period_end_param=END_ISO)


# ================================================================================== data floor
def extract_queries(period, tasks) -> list[tuple[str, str, str, dict]]:
    """(task, label, sql file, binds) of the data the run reads with the extract SQL files, in the
    DAG's order (``extract.extract_business_data`` also reads the depth figures of SPEC 4b, ``sql/depth/``).
    The customer-history query's ids come from the subscriptions result (filled in when it runs).
    ``evaluate_alerts`` reads the churn of the 8 weeks before the period: stored
    snapshots, and for the weeks without one the subscriptions extract over their span (as
    ``include.investor_metrics.weekly.alerts.churn_history.previous_churned_customers`` does; the bench
    database stores none of them)."""
    from include.investor_metrics.weekly.depth.extract import cohort_params, customer_params
    from include.investor_metrics.weekly.depth.instants import depth_instants
    from include.investor_metrics.weekly.extract import period_bounds

    bounds = period_bounds(period)
    depth = depth_instants(period)  # bound as depth.extract.extract_depth binds them
    depth_bounds = customer_params(depth)
    history = []
    if ALERTS_TASK in tasks:
        import pendulum

        from include.investor_metrics.period import Period, calendar_offset, weekly_period
        from include.investor_metrics.weekly.alerts import rules

        weeks = getattr(rules, "CHURN_SPIKE_WEEKS", 8)
        ends = [
            calendar_offset(period.end, pendulum.timezone(period.tz), days=7 * k) for k in range(weeks, 0, -1)
        ]
        span = Period(start=min(weekly_period(e, period.tz).start for e in ends), end=max(ends), tz=period.tz)
        history = [
            (ALERTS_TASK, "alerts_stored_weeks", "alerts/previous_churned.sql", {"period_ends": ends}),
            (ALERTS_TASK, "alerts_prior_subscriptions", "extract/subscriptions.sql", period_bounds(span)),
        ]
    return [
        (BUSINESS, "subscriptions", "extract/subscriptions.sql", bounds),
        (
            BUSINESS,
            "customer_history",
            "extract/customer_history.sql",
            {"start": bounds["start"], "customer_ids": None},
        ),
        (BUSINESS, "usage", "extract/usage.sql", bounds),
        (BUSINESS, "nps", "extract/nps.sql", bounds),
        (BUSINESS, "leads", "extract/leads.sql", bounds),
        (BUSINESS, "depth_customers", "depth/customers.sql", depth_bounds),
        (BUSINESS, "depth_cohorts", "depth/cohorts.sql", cohort_params(depth)),
        (BUSINESS, "depth_plan_mrr", "depth/plan_mrr.sql", depth_bounds),
        (ids.EXTRACT_AI, "ai_metrics", "extract/ai_metrics.sql", bounds),
        (ids.EXTRACT_HEALTH, "health_checks", "extract/health_checks.sql", {**bounds, "services": []}),
        *history,
    ]


def measure_data_floor(settings: PostgresSettings, period, rounds: int, tasks) -> dict:
    """Median seconds per extract query (execute + fetch all), after one warm-up round."""
    from include.investor_metrics.db import connect, read_sql

    queries = extract_queries(period, tasks)
    times: dict[str, list[float]] = {label: [] for _t, label, _f, _b in queries}
    rows: dict[str, int] = {}
    conn = connect(settings)
    try:
        conn.autocommit = True
        for round_no in range(rounds + 1):
            customer_ids: list[int] = []
            all_weeks_stored = False
            for _task, label, sql_file, binds in queries:
                binds = dict(binds)
                if label == "customer_history":
                    binds["customer_ids"] = customer_ids
                if label == "alerts_prior_subscriptions" and all_weeks_stored:
                    if round_no:
                        times[label].append(0.0)  # every prior week stored: nothing read
                    continue
                began = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(read_sql(sql_file), binds)
                    result = cur.fetchall()
                    names = [d[0] for d in cur.description]
                seconds = time.perf_counter() - began
                if label == "subscriptions":
                    at = names.index("customer_id")
                    customer_ids = sorted({int(r[at]) for r in result if r[at] is not None})
                if label == "alerts_stored_weeks":
                    all_weeks_stored = len(result) >= len(binds["period_ends"])
                if round_no:  # round 0 warms the cache
                    times[label].append(seconds)
                rows[label] = len(result)
    finally:
        conn.close()
    per_query = {label: statistics.median(ts) for label, ts in times.items()}
    per_task = {task: 0.0 for task, _l, _f, _b in queries}
    for task, label, _f, _b in queries:
        per_task[task] += per_query[label]
    return {
        "per_query": per_query,
        "rows": rows,
        "per_task": per_task,
        "total": sum(per_task.values()),
        "rounds": rounds,
    }


def replay_validation_sql(settings: PostgresSettings, statements: list[dict], rounds: int) -> dict:
    """Re-run the statements GX sent, directly (execute + fetch), in one rolled-back transaction."""
    from include.investor_metrics.db import connect

    totals: list[float] = []
    errors: list[str] = []
    per_statement = [[] for _ in statements]
    conn = connect(settings)
    try:
        for round_no in range(rounds + 1):
            total = 0.0
            for i, statement in enumerate(statements):
                began = time.perf_counter()
                with conn.cursor() as cur:
                    try:
                        cur.execute("SAVEPOINT bench")
                        cur.execute(statement["sql"])
                        if cur.description is not None:
                            cur.fetchall()
                        cur.execute("RELEASE SAVEPOINT bench")
                    except Exception as exc:  # noqa: BLE001 - reported, not fatal
                        cur.execute("ROLLBACK TO SAVEPOINT bench")
                        if round_no == 0:
                            errors.append(str(exc).strip().splitlines()[0])
                seconds = time.perf_counter() - began
                total += seconds
                if round_no:
                    per_statement[i].append(seconds)
            if round_no:
                totals.append(total)
        conn.rollback()
    finally:
        conn.close()
    medians = [statistics.median(ts) if ts else 0.0 for ts in per_statement]
    slowest = sorted(range(len(statements)), key=lambda i: medians[i], reverse=True)[:5]
    # GX's BASIC result format also lists a sample of the bad values of every column check, in a
    # query of its own, even when there are none; the validation reads only the counts.
    samples = [i for i, st in enumerate(statements) if "AS unexpected_values" in st["sql"]]
    return {
        "total": statistics.median(totals) if totals else 0.0,
        "value_sample_queries": len(samples),
        "value_sample_seconds": sum(medians[i] for i in samples),
        "statements": len(statements),
        "errors": errors,
        "slowest": [{"seconds": medians[i], "sql": _one_line(statements[i]["sql"])} for i in slowest],
    }


def _one_line(sql: str, width: int = 150) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"
