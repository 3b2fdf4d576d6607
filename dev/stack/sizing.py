"""How many processes the demo stack runs, sized to the machine (``make demo``).

Airflow's defaults suit a server: ``[core] parallelism`` 32, and the LocalExecutor (with the ``fork``
start method, Linux's) forks ``parallelism`` worker processes when the scheduler starts and keeps them
all, idle or not (``airflow/executors/local_executor.py``: ``start`` → ``_spawn_workers_with_gc_freeze
(self.parallelism)``). On a 2-CPU laptop that is 32 processes, ~1.1 GB, for work two CPUs cannot do at
once. So, with ``cpus`` the CPUs this process may run on (``os.sched_getaffinity``, else
``os.cpu_count()``):

==============================================  ======================================  ============
setting                                         formula                                 2 CPUs
==============================================  ======================================  ============
``AIRFLOW__CORE__PARALLELISM``                  ``2 × cpus``, within [4, 32]            4
``AIRFLOW__API__WORKERS``                       ``cpus``, within [1, 2]                 2
``AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES``   ``cpus``, within [1, 2]                 2
``DEMO_BACKFILL_PARALLELISM`` (backfill runs)   ``parallelism // 2``, within [1, 3]     2
==============================================  ======================================  ============

Why: every task is CPU-bound on this machine (pandas, Great Expectations, and the PostgreSQL that
answers the extracts runs on the same CPUs), so more than two running tasks per CPU only take turns,
each holding a task process; 4 is the floor because a weekly run is three tasks wide (the extracts)
and the health probe needs a slot beside it; 32 is Airflow's default. The API server's second worker
halves its p99 at 100 requests/s on 2 CPUs (docs/benchmarks.md), more is not worth ~230 MB each. The
DAG processor parses two files: more than two parsing processes never help. A backfill run is at
most three tasks wide and mostly one, so ``parallelism // 2`` runs keep the slots busy; 3 is the
weekly DAG's ``max_active_runs``.

A setting in the environment wins over the formula (a bad one is a ``ConfigError`` naming it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from include.investor_metrics.settings import ConfigError

PARALLELISM = "AIRFLOW__CORE__PARALLELISM"
API_WORKERS = "AIRFLOW__API__WORKERS"
PARSING_PROCESSES = "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"
BACKFILL_RUNS = "DEMO_BACKFILL_PARALLELISM"


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _setting(env: dict[str, str], name: str) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class StackSizes:
    """The process counts of one demo stack; ``from_env`` names the settings the environment fixed."""

    cpus: int
    parallelism: int
    api_workers: int
    parsing_processes: int
    backfill_runs: int
    from_env: frozenset[str] = frozenset()

    def airflow_env(self) -> dict[str, str]:
        """The Airflow settings, as environment variables."""
        return {
            PARALLELISM: str(self.parallelism),
            API_WORKERS: str(self.api_workers),
            PARSING_PROCESSES: str(self.parsing_processes),
        }

    def describe(self) -> str:
        def part(label: str, name: str, value: int) -> str:
            return f"{label} {value}" + (" (set)" if name in self.from_env else "")

        return f"sized for {self.cpus} CPU(s): " + ", ".join(
            [
                part("parallelism", PARALLELISM, self.parallelism),
                part("API workers", API_WORKERS, self.api_workers),
                part("parsing processes", PARSING_PROCESSES, self.parsing_processes),
                part("backfill runs", BACKFILL_RUNS, self.backfill_runs),
            ]
        )


def stack_sizes(cpus: int, env: dict[str, str]) -> StackSizes:
    """The sizes for a machine of ``cpus`` CPUs; a setting present in ``env`` wins (module docstring)."""
    if cpus < 1:
        raise ValueError(f"cpus must be ≥ 1, got {cpus}")
    names = (PARALLELISM, API_WORKERS, PARSING_PROCESSES, BACKFILL_RUNS)
    given = {name: _setting(env, name) for name in names}
    parallelism = given[PARALLELISM] or _clamp(2 * cpus, 4, 32)
    return StackSizes(
        cpus=cpus,
        parallelism=parallelism,
        api_workers=given[API_WORKERS] or _clamp(cpus, 1, 2),
        parsing_processes=given[PARSING_PROCESSES] or _clamp(cpus, 1, 2),
        backfill_runs=given[BACKFILL_RUNS] or _clamp(parallelism // 2, 1, 3),
        from_env=frozenset(name for name, value in given.items() if value is not None),
    )


def api_server_workers(env: dict[str, str]) -> int:
    """``[api] workers`` of the API server for this machine (``AIRFLOW__API__WORKERS`` when set)."""
    return stack_sizes(machine_cpus(), env).api_workers
