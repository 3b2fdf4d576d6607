"""The demo's pipeline through the real scheduler: the weekly DAG and the probe DAG unpaused, the
weeks before the latest one backfilled, progress shown until every run is done."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from dev.stack.env import Stack, say

WEEKLY_DAG = "investor_metrics"
PROBE_DAG = "service_health_probe"


def history_intervals(cron: str, tz, now: datetime, weeks: int) -> list[tuple[datetime, datetime]]:
    """The ``weeks + 1`` most recent complete schedule intervals before ``now``, oldest first:
    the last one is the latest complete week (the scheduled run), the others are history."""
    from croniter import croniter

    it = croniter(cron, now.astimezone(tz))
    ends = [it.get_prev(datetime) for _ in range(weeks + 2)]
    return [(ends[i + 1], ends[i]) for i in range(weeks + 1)][::-1]


def run_history_and_latest_week(stack: Stack, client, timeout: float = 3600) -> str:
    """Unpause the weekly DAG (the scheduler then runs the latest complete week: catchup is off),
    backfill the weeks before it through the scheduler, show progress, and summarise."""
    from include.investor_metrics import settings as config

    weeks = int(stack.env_in.get("DEMO_BACKFILL_WEEKS", "12"))
    client.wait_for_dag(WEEKLY_DAG)
    errors = client.import_errors()
    if errors:
        raise RuntimeError(
            "the DAG files do not import:\n" + "\n".join(e.get("stack_trace", "")[-800:] for e in errors)
        )
    client.set_paused(WEEKLY_DAG, False)
    client.wait_for_dag(PROBE_DAG)
    client.set_paused(PROBE_DAG, False)
    say(f"health probes: {PROBE_DAG} unpaused (api, web, database, notifications every 5 minutes)")
    intervals = history_intervals(
        config.metrics_schedule(stack.env_in),
        config.investor_timezone(stack.env_in),
        datetime.now(timezone.utc),
        weeks,
    )
    history = intervals[:-1]
    say(
        f"weekly DAG unpaused: the scheduler runs the latest complete week "
        f"(ending {intervals[-1][1]:%Y-%m-%d %H:%M %Z})"
    )
    if weeks:
        if not client.backfills(WEEKLY_DAG):
            client.create_backfill(
                WEEKLY_DAG,
                history[0][0].isoformat(),
                history[-1][0].isoformat(),
                max_active_runs=int(stack.env_in.get("DEMO_BACKFILL_PARALLELISM", "3")),
            )
            say(
                f"backfill of the {weeks} weeks before it created "
                f"({history[0][1]:%Y-%m-%d} → {history[-1][1]:%Y-%m-%d}), running through the scheduler"
            )
        else:
            say("history already backfilled by an earlier `make demo`")
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        runs = client.dag_runs(WEEKLY_DAG, limit=weeks + 20)
        backfill = [r for r in runs if r["run_type"] == "backfill"]
        scheduled = [r for r in runs if r["run_type"] == "scheduled"]
        done = sum(r["state"] == "success" for r in backfill)
        failed = [r for r in backfill if r["state"] == "failed"]
        latest_state = scheduled[0]["state"] if scheduled else "queued"
        status = (
            f"history: {done}/{weeks} weeks done"
            + (f", {len(failed)} failed" if failed else "")
            + f" | latest week: {latest_state}"
        )
        if status != shown:
            say(status)
            shown = status
        finished = done + len(failed) >= weeks and latest_state in ("success", "failed")
        if finished:
            if failed or latest_state == "failed":
                bad = [r["dag_run_id"] for r in failed] + (
                    [scheduled[0]["dag_run_id"]] if latest_state == "failed" else []
                )
                raise RuntimeError(
                    f"{len(bad)} run(s) failed ({', '.join(bad[:3])}…): open the Airflow UI, "
                    f"DAG {WEEKLY_DAG}, and read the failed task's log"
                )
            latest = stack.archive / "metrics_snapshot.json"
            snap = json.loads(latest.read_text())
            fin = snap["financial"]
            return (
                f"\n  Latest week    {snap['period']['start']} → {snap['period']['end']}: "
                f"MRR ${fin['mrr']:,.2f}, {fin['active_customers']} active customers "
                f"(+ {weeks} weeks of history)"
            )
        time.sleep(3)
    raise RuntimeError(f"the runs did not finish within {timeout:.0f} s; watch them in the Airflow UI")
