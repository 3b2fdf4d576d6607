"""The Airflow pool the weekly DAG's source tasks run in (SPEC 13), created by the run command
before the scheduler starts: a task whose pool does not exist is never scheduled (Airflow 3.3's
scheduler only logs a warning), so ``make demo`` creates it and fails, naming it, when it cannot.

Compose init runs the same command (``docker/airflow-init.sh``); an existing deployment runs it
once (docs/configuration.md, The source pool)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from dev.stack.processes import airflow_argv
from include.investor_metrics.contract import SOURCE_POOL
from include.investor_metrics.settings import ConfigError, number_setting

SLOTS_SETTING = "INVESTOR_SOURCE_POOL_SLOTS"
DEFAULT_SLOTS = 4
DESCRIPTION = "ChatterFix source database: concurrent queries of investor_metrics (SPEC 13)"


def source_pool_slots(env: Mapping[str, str]) -> int:
    """``INVESTOR_SOURCE_POOL_SLOTS`` (default 4): how many tasks may query the source at once."""
    return int(number_setting(SLOTS_SETTING, DEFAULT_SLOTS, integer=True, minimum=1, env=env))


def pools_set_argv(slots: int) -> list[str]:
    return airflow_argv("pools", "set", SOURCE_POOL, str(slots), DESCRIPTION)


def create_source_pool(env: Mapping[str, str], log, *, timeout: float | None = None) -> int:
    """Create (or resize) the pool with ``airflow pools set``; its output goes to ``log``. Returns
    the slots; a ``ConfigError`` naming the pool and the log when the command fails."""
    slots = source_pool_slots(env)
    done = subprocess.run(pools_set_argv(slots), env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise ConfigError(
            f"could not create the Airflow pool {SOURCE_POOL!r} ({slots} slots): `airflow pools set` "
            f"exited with {done.returncode} (its output: {getattr(log, 'name', 'the log')}); without it "
            "the weekly DAG's source tasks are never scheduled")
    return slots
