"""The demo's pipeline through the real scheduler: the weekly DAG and the probe DAG unpaused, the
weeks before the latest one backfilled, progress shown until every run is done.

The history comes first: unpausing the weekly DAG makes the scheduler start the latest complete
week at once (catchup is off), and a backfill's runs need the DAG unpaused, so both start together.
The latest week's weekly summary (the one e-mail of the demo) is therefore held: its task instance
is marked skipped, with a note, before it can run, and cleared once every week of the history is
archived, so the first e-mail a newcomer gets compares with the previous week and draws 12 weeks.
The alert e-mails of the latest week are not held (SPEC 8: at once)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from dev.stack.env import Stack, say

WEEKLY_DAG = "investor_metrics"
PROBE_DAG = "service_health_probe"
SLACK_DAG = "investor_metrics_slack"
SUMMARY_TASK = "email.send_weekly_summary"
HOLD_NOTE = "held by make demo until the history is backfilled (the e-mail's deltas and trend charts need it)"


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
    # The Slack DAG stays paused while the history is built (a paused DAG is not queued by asset
    # events, so the backfilled weeks are not posted, nor the latest week before the week it is
    # compared with exists); then the latest week's snapshot event is announced again for it.
    client.wait_for_dag(SLACK_DAG)
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
                max_active_runs=stack.sizes().backfill_runs,
            )
            say(
                f"backfill of the {weeks} weeks before it created "
                f"({history[0][1]:%Y-%m-%d} → {history[-1][1]:%Y-%m-%d}), running through the scheduler"
            )
        else:
            say("history already backfilled by an earlier `make demo`")
    deadline = time.monotonic() + timeout
    shown = None
    held = None  # the latest week's summary: None = not looked at yet, True = held, False = running free
    while time.monotonic() < deadline:
        runs = client.dag_runs(WEEKLY_DAG, limit=weeks + 20)
        backfill = [r for r in runs if r["run_type"] == "backfill"]
        scheduled = [r for r in runs if r["run_type"] == "scheduled"]
        done = sum(r["state"] == "success" for r in backfill)
        failed = [r for r in backfill if r["state"] == "failed"]
        history_done = done + len(failed) >= weeks
        if scheduled and held is None:
            held = hold_summary(client, scheduled[0]["dag_run_id"]) if weeks and not history_done else False
        if held and history_done:
            client.clear_tasks(WEEKLY_DAG, scheduled[0]["dag_run_id"], [SUMMARY_TASK])
            say(f"history built: the latest week's {SUMMARY_TASK} released (it e-mails now)")
            held = False
            continue
        latest_state = scheduled[0]["state"] if scheduled else "queued"
        status = (
            f"history: {done}/{weeks} weeks done"
            + (f", {len(failed)} failed" if failed else "")
            + f" | latest week: {latest_state}"
            + (" (its summary e-mail waits for the history)" if held else "")
        )
        if status != shown:
            say(status)
            shown = status
        finished = history_done and held is False and latest_state in ("success", "failed")
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
            announce_latest_week(stack, client, snap)
            slack = wait_for_slack_updates(stack, client)
            fin = snap["financial"]
            return (
                f"\n  Latest week    {snap['period']['start']} → {snap['period']['end']}: "
                f"MRR ${fin['mrr']:,.2f}, {fin['active_customers']} active customers "
                f"(+ {weeks} weeks of history)\n  Slack          {slack}"
            )
        time.sleep(3)
    raise RuntimeError(f"the runs did not finish within {timeout:.0f} s; watch them in the Airflow UI")


def hold_summary(client, run_id: str) -> bool | None:
    """Mark the latest week's summary task skipped before it runs; True when it is held (now, or by an
    interrupted earlier ``make demo``), False when it already ran or runs (nothing to hold), None when
    its task instance is not there yet (asked again at the next poll)."""
    from dev.stack.airflow_api import AirflowAPIError

    try:
        ti = client.task_instance(WEEKLY_DAG, run_id, SUMMARY_TASK)
    except AirflowAPIError:
        return None
    if ti.get("state") == "skipped" and ti.get("note") == HOLD_NOTE:
        return True
    if ti.get("state") not in (None, "none"):
        return False
    client.set_task_state(WEEKLY_DAG, run_id, SUMMARY_TASK, "skipped", HOLD_NOTE)
    say(f"latest week: its {SUMMARY_TASK} waits until the history is built")
    return True


def announce_latest_week(stack: Stack, client, snapshot: dict) -> None:
    """Unpause the Slack DAG and record the latest week's snapshot event again (``POST
    /api/v2/assets/events``, the extra ``archive_snapshot`` gives a scheduled week): it posts that
    week once, with its change against the backfilled week before it (the send log makes a second
    announcement of the same week post nothing)."""
    from include.investor_metrics.contract import SNAPSHOT_ASSET_NAME

    client.set_paused(SLACK_DAG, False)
    assets = client.request("GET", f"/api/v2/assets?name_pattern={SNAPSHOT_ASSET_NAME}")["assets"]
    asset = next(a for a in assets if a["name"] == SNAPSHOT_ASSET_NAME)
    extra = {"period_end": snapshot["period"]["end"], "period_type": snapshot["period"]["type"],
             "mrr": snapshot["financial"]["mrr"], "series": "weekly",
             "announce": snapshot["period"]["type"] == "weekly"}
    client.request("POST", "/api/v2/assets/events", {"asset_id": asset["id"], "extra": extra})
    say(f"Slack updates: {SLACK_DAG} unpaused, the latest week announced (messages in {stack.slack_dir})")


def wait_for_slack_updates(stack: Stack, client, timeout: float = 300) -> str:
    """Wait until the Slack DAG has no run queued or running (its runs follow the snapshot events);
    a line saying what it posted to the local sink."""
    from dev.stack.slack_sink import messages

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.dag_runs(SLACK_DAG, limit=50)
        if runs and not any(r["state"] in ("queued", "running") for r in runs):
            failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
            posted = messages(stack.slack_dir)
            last = posted[-1]["payload"]["text"] if posted else "nothing posted"
            return (f"{len(posted)} update(s) in {stack.slack_dir} (latest: {last})"
                    + (f"; {len(failed)} {SLACK_DAG} run(s) failed: see the UI" if failed else ""))
        time.sleep(3)
    return f"{SLACK_DAG} still running after {timeout:.0f} s: see the Airflow UI"
