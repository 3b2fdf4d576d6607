"""The weekly benchmark's report: the per-task table, the verdicts against the targets, and where
the run's excess over the two floors goes."""

from __future__ import annotations

import os
import textwrap

from dev.bench.common import (
    EXTRACT_TASKS,
)
from dev.bench.weekly.config import (
    FLAT_TOLERANCE,
    MEMORY_TARGET_MB,
    RATIO_TARGET,
    SEED,
    VALIDATE_TASK,
)


def _f(value, fmt="{:.2f}", missing="—") -> str:
    return missing if value is None else fmt.format(value)


def attribution(figures: dict) -> dict:
    """The run's excess over the two floors, split by where it happens: per task, the run's time
    − the no-op's time − the task's SQL floor (medians over the runs), the extracts together
    (dag.test runs them one after the other in any order, and the first task run in a process
    carries the in-process Execution API's start-up), plus the time between tasks."""
    run, noop, floor = figures["dag_run"], figures["orchestration_floor"], figures["data_floor"]
    rt, nt, ft = run["tasks"], noop["tasks"], floor["per_task"]
    extracts = [t for t in figures["tasks"] if t in EXTRACT_TASKS]
    rt = {t: rt.get(t) or 0.0 for t in figures["tasks"]}
    nt = {t: nt.get(t) or 0.0 for t in figures["tasks"]}
    parts = {
        "extracts": run["extracts"] - noop["extracts"] - sum(ft.get(t, 0.0) for t in extracts),
        **{t: rt[t] - nt[t] - ft.get(t, 0.0) for t in figures["tasks"] if t not in EXTRACT_TASKS},
        "between tasks": run["between"] - noop["between"],
    }
    return {"excess": run["seconds"] - noop["seconds"] - floor["total"], "parts": parts}


def report(figures: dict) -> str:
    m, pg, tasks = figures["machine"], figures["postgres"], figures["tasks"]
    run, noop = figures["dag_run"], figures["orchestration_floor"]
    floor, vsql = figures["data_floor"], figures.get("validation_sql")
    steps1, steps2 = figures["steps"].get("bench", {}), figures["steps"].get("bench2x", {})
    bytecode = (
        "cached (PYTHONPYCACHEPREFIX in the workspace, warmed by one unmeasured run of each DAG), as on a "
        "deployed worker"
        if figures["bytecode_cache"]
        else "as this environment has it"
        + (
            " (PYTHONDONTWRITEBYTECODE set: every import compiles from source)"
            if os.getenv("PYTHONDONTWRITEBYTECODE")
            else ""
        )
    )
    lines = [
        "",
        f"ChatterFix investor_metrics benchmark — {figures['date']}",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, "
        f"Airflow {m.get('airflow', '?')}, GX {m.get('great_expectations', '?')}, pandas "
        f"{m.get('pandas', '?')}",
        f"PostgreSQL {pg['version']} ({pg['origin']}): shared_buffers {pg['shared_buffers']}, work_mem "
        f"{pg['work_mem']}, max_parallel_workers_per_gather {pg['max_parallel_workers_per_gather']}, jit "
        f"{pg['jit']}",
        f"data: {', '.join(f'{n} ({s})' for n, s in figures['database_sizes'].items())}; seed {SEED}; "
        f"period [{figures['period']['start']}, {figures['period']['end']}) (manual run, UTC)",
        f"runs: real DAG = median of {run['runs']} dag.test() "
        f"({', '.join(f'{x:.1f}' for x in run['all_seconds'])} s), "
        f"no-op DAG = median of {noop['runs']} ({', '.join(f'{x:.1f}' for x in noop['all_seconds'])} s), "
        f"interleaved; SQL floors = median of {floor['rounds']} warm rounds",
        f"load average (1/5/15 min): {figures['load_average']['start']} at start, "
        f"{figures['load_average']['end']} "
        "at end (a shared machine: compare the figures of one run with each other)",
        f"bytecode: {bytecode}",
        "",
    ]
    width = max(len(t) for t in [*tasks, "whole run"]) + 2
    header = (
        f"{'task':<{width}}{'DAG run s':>10}{'no-op s':>9}{'PG floor s':>12}{'step s':>8}"
        f"{'peak MiB':>10}{'peak MiB 2x':>13}{'2x/1x':>7}"
    )
    lines += [header, "-" * len(header)]
    last_extract = next((t for t in reversed(tasks) if t in EXTRACT_TASKS), None)
    for task in tasks:
        pg_floor, mark = floor["per_task"].get(task), " "
        if task == VALIDATE_TASK and vsql:
            pg_floor, mark = vsql["total"], "*"
        p1 = steps1.get(task, {}).get("max_rss_mb")
        p2 = steps2.get(task, {}).get("max_rss_mb")
        step_s = _f(steps1.get(task, {}).get("seconds")) + (
            "s" if steps1.get(task, {}).get("skipped") else " "
        )
        lines.append(
            f"{task:<{width}}{_f(run['tasks'].get(task)):>10}{_f(noop['tasks'].get(task)):>9}"
            f"{_f(pg_floor) + mark:>12}{step_s:>9}"
            f"{_f(p1, '{:.0f}'):>9}{_f(p2, '{:.0f}'):>13}{_f(p2 / p1 if p1 and p2 else None):>7}"
        )
        if task == last_extract:
            extract_floor = sum(floor["per_task"].get(t, 0.0) for t in EXTRACT_TASKS)
            extract_steps = sum(steps1.get(t, {}).get("seconds") or 0.0 for t in EXTRACT_TASKS)
            lines.append(
                f"{'  the 3 extracts':<{width}}{_f(run['extracts']):>10}{_f(noop['extracts']):>9}"
                f"{_f(extract_floor) + ' ':>12}{_f(extract_steps) + ' ':>9}"
            )
    lines.append("-" * len(header))
    peak1 = max((s["max_rss_mb"] for s in steps1.values()), default=None)
    peak2 = max((s["max_rss_mb"] for s in steps2.values()), default=None)
    lines.append(
        f"{'whole run':<{width}}{_f(run['seconds']):>10}{_f(noop['seconds']):>9}"
        f"{_f(floor['total']) + ' ':>12}"
        f"{_f(sum(s['seconds'] for s in steps1.values()) if steps1 else None) + ' ':>9}"
        f"{_f(peak1, '{:.0f}'):>9}{_f(peak2, '{:.0f}'):>13}"
        f"{_f(peak2 / peak1 if peak1 and peak2 else None):>7}"
    )
    lines += [
        "",
        "DAG run s: task instance end − start in dag.test() (whole run: the dag.test() call), medians over "
        "the runs.",
        "  no-op s: the same-shape DAG whose tasks do nothing. The first task a dag.test() process runs "
        "(one of the",
        "  extracts, any) carries the in-process Execution API's start-up: compare the 3 extracts' sum.",
        "  PG floor s: the task's SQL run directly with psycopg2 (execute + fetch all): the extract/*.sql "
        "files, and",
        "  for evaluate_alerts the 8 prior weeks' subscriptions; * validate_data: the SQL GX sent, replayed "
        "directly",
        "  (not in the data floor). step s / peak MiB: the task's pipeline function alone in its own "
        "process with",
        "  the Airflow SDK loaded (VmHWM, nothing subtracted); s = skipped (no e-mail on a manual run).",
        "",
    ]
    ratio = figures["ratio_dag_test"]
    in_process = "in one process (dag.test(), no executor): " if "scheduler" in figures else ""
    verdict = "OK" if ratio <= RATIO_TARGET else "MISSED"
    lines.append(
        f"{in_process}ratio run / (data floor + orchestration floor) = {run['seconds']:.2f} / "
        f"({floor['total']:.2f} + {noop['seconds']:.2f}) = {ratio:.2f}   target ≤ {RATIO_TARGET}: "
        + (verdict if not in_process else f"{verdict} (not the target's measure: see below)")
    )
    if vsql:
        r2 = figures["ratio_with_validation_sql"]
        lines.append(
            f"  (counting the validation's SQL in the floor too: {run['seconds']:.2f} / "
            f"({floor['total']:.2f} "
            f"+ {vsql['total']:.2f} + {noop['seconds']:.2f}) = {r2:.2f})"
        )
    if "scheduler" in figures:
        lines += _scheduler_lines(figures, width)
    if peak1 is not None:
        verdict = "OK" if peak1 <= MEMORY_TARGET_MB else "MISSED"
        lines.append(
            f"peak memory of any task = {peak1:.0f} MiB ({_peak_task(steps1)})   target ≤ "
            f"{MEMORY_TARGET_MB} MB: {verdict}"
        )
    if peak1 and peak2:
        worst = max(tasks, key=lambda t: steps2[t]["max_rss_mb"] / steps1[t]["max_rss_mb"])
        growth = steps2[worst]["max_rss_mb"] / steps1[worst]["max_rss_mb"]
        verdict = "flat" if growth <= FLAT_TOLERANCE else "NOT flat"
        lines.append(
            f"event tables doubled: largest growth {growth:.2f}× ({worst}), peak {peak2:.0f} MiB"
            f"   → {verdict} (≤ {FLAT_TOLERANCE:.2f}×)"
        )
    lines.append("")
    split = attribution(figures)
    parts = split["parts"]
    lines += textwrap.wrap(
        f"where the run's excess over the floors goes: {split['excess']:.2f} s = "
        + " + ".join(f"{name} {sec:.2f}" for name, sec in parts.items()),
        width=110,
        subsequent_indent="  ",
    )
    if vsql and VALIDATE_TASK in parts:
        gx_import = next(
            (i["seconds"] for i in figures.get("imports", []) if i["label"] == "great_expectations"), None
        )
        rest = parts[VALIDATE_TASK] - vsql["total"] - (gx_import or 0)
        lines.append(
            f"  {VALIDATE_TASK} {parts[VALIDATE_TASK]:.2f} s ≈ its SQL {vsql['total']:.2f} + importing GX "
            f"{_f(gx_import)} + GX's own Python work {rest:.2f}"
        )
    if figures.get("imports"):
        lines += textwrap.wrap(
            "one-off import cost in a fresh task process (cumulative RSS after): "
            + ", ".join(
                f"{i['label']} {i['seconds']:.2f} s ({i['max_rss_mb']:.0f} MiB)" for i in figures["imports"]
            ),
            width=110,
            subsequent_indent="  ",
        )
    lines += textwrap.wrap(
        "data floor per query (s, rows): "
        + ", ".join(
            f"{label} {sec:.2f} ({floor['rows'].get(label, 0):,})"
            for label, sec in floor["per_query"].items()
        ),
        width=110,
        subsequent_indent="  ",
    )
    if vsql:
        lines += textwrap.wrap(
            f"validation SQL: {vsql['statements']} statements, {vsql['total']:.2f} s replayed directly "
            f"({vsql['client_seconds']:.2f} s as GX saw it in the step), of which "
            f"{vsql['value_sample_seconds']:.2f} s "
            f"in {vsql['value_sample_queries']} queries fetching a sample of bad values (GX result format "
            "BASIC) that "
            "the validation never reads; slowest statements:",
            width=110,
            subsequent_indent="  ",
        )
        for s in vsql["slowest"]:
            lines.append(f"  {s['seconds']:6.2f} s  {s['sql']}")
        if vsql["errors"]:
            lines.append(f"  ({len(vsql['errors'])} statement(s) could not be replayed: {vsql['errors'][0]})")
    return "\n".join(lines)


def _scheduler_lines(figures: dict, width: int) -> list[str]:
    """The deployed-way table (dev/bench/scheduler.py) and the headline ratio."""
    sched, floor, tasks = figures["scheduler"], figures["data_floor"], figures["tasks"]
    run, noop = sched["dag_run"], sched["orchestration_floor"]
    lines = [
        "",
        f"THROUGH THE SCHEDULER, as deployed (`make demo`'s stack, executor {sched.get('executor', '?')}, "
        f"each task its own process): medians of {run['runs']} manual runs of each DAG, interleaved",
        f"  real ({', '.join(f'{x:.1f}' for x in run['all_seconds'])} s), "
        f"no-op ({', '.join(f'{x:.1f}' for x in noop['all_seconds'])} s)",
    ]
    header = f"{'task':<{width}}{'run s':>10}{'no-op s':>9}{'PG floor s':>12}"
    lines += [header, "-" * len(header)]
    for task in tasks:
        lines.append(
            f"{task:<{width}}{_f(run['tasks'].get(task)):>10}{_f(noop['tasks'].get(task)):>9}"
            f"{_f(floor['per_task'].get(task)) + ' ':>13}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'whole run':<{width}}{_f(run['seconds']):>10}{_f(noop['seconds']):>9}"
        f"{_f(floor['total']) + ' ':>13}"
    )
    lines.append("run s: Airflow's run end − start (the UI's Duration) and each task instance's end − start.")
    if sched.get("executor_log"):
        lines.append("scheduler log: " + sched["executor_log"][0][-110:])
    ratio = figures["ratio"]
    verdict = "OK" if ratio <= RATIO_TARGET else "MISSED"
    lines += [
        "",
        f"RATIO run / (data floor + orchestration floor), through the scheduler = {run['seconds']:.2f} / "
        f"({floor['total']:.2f} + {noop['seconds']:.2f}) = {ratio:.2f}   target ≤ {RATIO_TARGET}: {verdict}",
    ]
    return lines


def _levels(shape: list[dict]) -> list[list[str]]:
    """The tasks grouped by depth (the Graph view's columns)."""
    depth: dict[str, int] = {}
    for t in shape:  # topological order: upstream first
        depth[t["task_id"]] = 1 + max((depth[u] for u in t["upstream"]), default=-1)
    return [[t for t, d in depth.items() if d == level] for level in range(max(depth.values()) + 1)]


def _peak_task(steps: dict) -> str:
    return max(steps, key=lambda t: steps[t]["max_rss_mb"])
