"""One backfill through the real scheduler, timed: unpause, let the scheduled run of the latest
week finish (not timed), then a backfill of ``weeks`` logical dates until every run is terminal;
the runs' and tasks' durations and the machine's CPU time."""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

from dev.bench.backfill.config import (
    LAST_LOGICAL,
    say,
)
from include.investor_metrics.period import as_instant, iso_utc


def _count(client, dag_id: str, run_type: str, state: str | None = None) -> int:
    query = f"limit=1&run_type={run_type}" + (f"&state={state}" if state else "")
    return client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["total_entries"]


def _all_pages(client, path: str, key: str) -> list[dict]:
    """Every item of a paginated list endpoint (``path`` with its query, without limit/offset)."""
    out, offset = [], 0
    while True:
        page = client.request("GET", f"{path}&limit=100&offset={offset}")[key]
        out += page
        if len(page) < 100:
            return out
        offset += 100


def _runs(client, dag_id: str, run_type: str) -> list[dict]:
    return _all_pages(
        client, f"/api/v2/dags/{dag_id}/dagRuns?run_type={run_type}&order_by=logical_date", "dag_runs"
    )


def _task_seconds(client, dag_id: str) -> dict[str, dict]:
    """Per task of the backfill's runs: median and total of Airflow's task durations (queued →
    running is not in them: that is the scheduler's and the executor's share)."""
    durations: dict[str, list[float]] = {}
    tis = _all_pages(
        client,
        f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances?run_id_prefix_pattern=backfill__",
        "task_instances",
    )
    for ti in tis:
        if ti.get("duration") is not None and ti.get("start_date"):  # a task skipped unstarted has none
            durations.setdefault(ti["task_id"], []).append(float(ti["duration"]))
    return {
        task: {"median_s": statistics.median(values), "total_s": sum(values), "n": len(values)}
        for task, values in durations.items()
    }


def _cpu_busy_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot (user, nice, system, irq, softirq,
    steal; /proc/stat), in seconds; None off Linux. The benchmark runs alone, so the difference
    across a backfill is what the stack, PostgreSQL and the tasks cost together."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(client, dag_id: str, weeks: int, max_active_runs: int, timeout: float, label: str) -> dict:
    """Unpause, let the scheduled run of the latest week finish (not timed), then time a backfill
    of ``weeks`` logical dates ending ``LAST_LOGICAL`` until every run of it is terminal."""
    from dev.bench.common import BenchError

    client.wait_for_dag(dag_id, timeout=300)
    errors = client.import_errors()
    if errors:
        raise BenchError("DAG import errors:\n" + "\n".join(e.get("stack_trace", "")[-800:] for e in errors))
    client.set_paused(dag_id, False)
    say(f"{label}: unpaused; waiting for the scheduled run of the latest week (not timed)")
    deadline = time.monotonic() + 900
    while True:
        sched = _runs(client, dag_id, "scheduled")
        if sched and all(r["state"] in ("success", "failed") for r in sched):
            break
        if time.monotonic() > deadline:
            raise BenchError(
                f"{label}: the scheduled run did not finish within 900 s: "
                f"{[(r['dag_run_id'], r['state']) for r in sched]}"
            )
        time.sleep(1)
    sched_s = [
        (as_instant(r["end_date"]) - as_instant(r["start_date"])).total_seconds()
        for r in sched
        if r.get("start_date") and r.get("end_date")
    ]
    say(
        f"{label}: scheduled run {sched[0]['dag_run_id']} {sched[0]['state']} ({sched_s[0]:.1f} s)"
        if sched_s
        else f"{label}: scheduled run {sched[0]['state']}"
    )

    first = LAST_LOGICAL - timedelta(weeks=weeks - 1)
    load_before = _load()
    cpu_before = _cpu_busy_seconds()
    began = time.monotonic()
    client.create_backfill(dag_id, iso_utc(first), iso_utc(LAST_LOGICAL), max_active_runs=max_active_runs)
    say(
        f"{label}: backfill created: {weeks} weeks, logical dates {iso_utc(first)} → "
        f"{iso_utc(LAST_LOGICAL)}, "
        f"max_active_runs {max_active_runs}; clock running"
    )
    deadline = began + timeout
    shown, last_print = None, 0.0
    while True:
        ok = _count(client, dag_id, "backfill", "success")
        bad = _count(client, dag_id, "backfill", "failed")
        now = time.monotonic()
        if ok + bad >= weeks:
            wall = now - began
            break
        if now > deadline:
            raise BenchError(f"{label}: {ok + bad}/{weeks} runs terminal after {timeout:.0f} s")
        if (ok, bad) != shown and now - last_print >= 15:
            say(
                f"{label}: {ok}/{weeks} done"
                + (f", {bad} failed" if bad else "")
                + f" after {now - began:.0f} s"
            )
            shown, last_print = (ok, bad), now
        time.sleep(1)
    cpu_after = _cpu_busy_seconds()
    load_after = _load()
    runs = _runs(client, dag_id, "backfill")
    durations = sorted(
        (as_instant(r["end_date"]) - as_instant(r["start_date"])).total_seconds()
        for r in runs
        if r.get("start_date") and r.get("end_date")
    )
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    result = {
        "weeks": weeks,
        "runs": len(runs),
        "success": ok,
        "failed": bad,
        "failed_ids": failed[:10],
        "seconds": wall,
        "runs_per_min": weeks / wall * 60,
        "run_median_s": durations[len(durations) // 2] if durations else None,
        "run_min_s": durations[0] if durations else None,
        "run_max_s": durations[-1] if durations else None,
        "scheduled_run_s": sched_s[0] if sched_s else None,
        "scheduled_run_state": sched[0]["state"],
        "load_before": load_before,
        "load_after": load_after,
        "tasks": _task_seconds(client, dag_id),
        "cpu_busy_s": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    }
    say(f"{label}: {ok} succeeded, {bad} failed in {wall:.1f} s ({result['runs_per_min']:.1f} runs/min)")
    return result


def _load() -> str:
    from dev.bench import common as bench

    return bench._load_average() or "?"
