"""The backfill benchmark's table and verdict: real / no-op wall time against the target, and where
a run's time goes, task by task."""

from __future__ import annotations

from datetime import timedelta

from dev.bench.backfill.config import (
    DAG_ID,
    DATA_END,
    LAST_LOGICAL,
    NOOP_DAG_ID,
    RATIO_TARGET,
    SPAN_DAYS,
)
from include.investor_metrics.period import iso_utc


def report(real: dict, noop: dict, args, mach: dict, origin: str, shape: dict) -> bool:
    ratio = real["seconds"] / noop["seconds"]
    ok = ratio <= RATIO_TARGET and real["failed"] == 0 and noop["failed"] == 0
    print()
    print(
        f"Backfill through the real scheduler (LocalExecutor) — {args.weeks} weekly runs, logical dates "
        f"{iso_utc(LAST_LOGICAL - timedelta(weeks=args.weeks - 1))} → {iso_utc(LAST_LOGICAL)}, "
        f"max_active_runs {args.max_active_runs}; demo data (seed 42, {SPAN_DAYS} days to "
        f"{iso_utc(DATA_END)})"
    )
    print(
        f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram_gib']} GiB RAM, {mach['os']}, "
        f"Python {mach['python']}, Airflow {mach.get('airflow', '?')}"
    )
    print(
        f"PostgreSQL: {origin}; DAG shape: {len(shape['shape'])} tasks, "
        f"{shape['summary'] or shape['timetable']}"
    )
    print()
    header = (
        f"{'DAG':<40}{'runs ok':>8}{'failed':>7}{'wall s':>9}{'runs/min':>9}{'run p50 s':>10}"
        f"{'run min-max s':>15}  load avg before → after"
    )
    print(header)
    print("-" * len(header))
    for name, r in ((DAG_ID, real), (f"{NOOP_DAG_ID} (no-op)", noop)):
        span = f"{r['run_min_s']:.1f}-{r['run_max_s']:.1f}" if r["run_min_s"] is not None else "—"
        p50 = f"{r['run_median_s']:.1f}" if r["run_median_s"] is not None else "—"
        print(
            f"{name:<40}{r['success']:>8}{r['failed']:>7}{r['seconds']:>9.1f}{r['runs_per_min']:>9.1f}"
            f"{p50:>10}{span:>15}  {r['load_before']} → {r['load_after']}"
        )
    if real.get("cpu_busy_s") is not None and noop.get("cpu_busy_s") is not None:
        for name, r in ((DAG_ID, real), (f"{NOOP_DAG_ID} (no-op)", noop)):
            print(
                f"{name:<40} machine CPU busy {r['cpu_busy_s']:7.1f} s = {r['cpu_busy_s'] / r['weeks']:.2f} "
                "s/week, "
                f"{r['cpu_busy_s'] / (r['seconds'] * mach['nproc']):.0%} of {mach['nproc']} CPUs"
            )
    print()
    print_task_table(real, noop, shape)
    print()
    print(
        f"ratio real / no-op = {real['seconds']:.1f} / {noop['seconds']:.1f} = {ratio:.2f}   "
        f"target ≤ {RATIO_TARGET}: {'MET' if ratio <= RATIO_TARGET else 'MISSED'}"
    )
    for name, r in ((DAG_ID, real), (NOOP_DAG_ID, noop)):
        if r["failed"]:
            print(f"  {name}: {r['failed']} run(s) FAILED, e.g. {', '.join(r['failed_ids'][:3])}")
    if args.weeks != 104:
        print(f"  note: {args.weeks} weeks, not the 104 of the target (--weeks)")
    busy = (
        max(float(x.split()[0]) for x in (real["load_before"], noop["load_before"]) if x != "?")
        if "?" not in (real["load_before"], noop["load_before"])
        else None
    )
    if busy is not None:
        print(
            f"  machine {'BUSY' if busy > mach['nproc'] * 0.5 else 'quiet'} before the backfills "
            f"(1-min load average up to {busy:.2f} on {mach['nproc']} CPUs)"
        )
    print(
        "  not timed: the scheduled run of the latest week, unpaused first (real "
        f"{_f(real['scheduled_run_s'])} s, "
        f"no-op {_f(noop['scheduled_run_s'])} s)"
    )
    return ok


def print_task_table(real: dict, noop: dict, shape: dict) -> None:
    """Where a run's time goes, task by task (Airflow's task durations, start to end)."""
    real_tasks, noop_tasks = real.get("tasks") or {}, noop.get("tasks") or {}
    if not real_tasks or not noop_tasks:
        return
    header = f"{'task (duration, s)':<32}{'real p50':>9}{'no-op p50':>10}{'real sum':>10}{'no-op sum':>10}"
    print(header)
    print("-" * len(header))
    order = [task_id for task_id, _upstream in shape["shape"]] if shape.get("shape") else sorted(real_tasks)
    for task in order:
        r, n = real_tasks.get(task), noop_tasks.get(task)
        real_cols = f"{r['median_s']:>9.2f}" if r else f"{'—':>9}"
        noop_cols = f"{n['median_s']:>10.2f}" if n else f"{'—':>10}"
        sums = f"{r['total_s'] if r else 0:>10.1f}{n['total_s'] if n else 0:>10.1f}"
        note = "" if r and n else "  (never started: skipped)"
        print(f"{task:<32}{real_cols}{noop_cols}{sums}{note}")
    print(
        f"{'all tasks':<32}{'':>9}{'':>10}{sum(t['total_s'] for t in real_tasks.values()):>10.1f}"
        f"{sum(t['total_s'] for t in noop_tasks.values()):>10.1f}"
    )


def _f(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else "—"
