"""Says, loudly, that the source pool is missing (SPEC 13: a missing pool must never leave tasks
waiting silently). Airflow 3.3's scheduler never schedules a task whose pool does not exist and
only logs a warning (``Tasks using non-existent pool ... will not be scheduled``); the DAG processor's
check for unknown pools is not enabled. So, in the scheduler, when a run of ``investor_metrics``
starts (the listener of ``plugins/source_pool_check.py``) and the pool ``chatterfix_source`` does not
exist: an error in the scheduler log and the run's note (shown on the run in the UI), both saying
how to create it. The run then waits until the pool exists (creating it releases the tasks) or
its ``dagrun_timeout`` (2 hours) fails it."""

from __future__ import annotations

import logging

from include.investor_metrics.contract import SOURCE_POOL

log = logging.getLogger(__name__)

WEEKLY_DAG_ID = "investor_metrics"


def missing_pool_message(session, pool: str = SOURCE_POOL) -> str | None:
    """What to tell the operator when ``pool`` does not exist; None when it does. Reads with the
    caller's ``session`` (the scheduler's: a session of its own would commit inside the scheduler's
    critical section, which Airflow refuses)."""
    from airflow.models.pool import Pool
    from sqlalchemy import select

    if session.scalar(select(Pool.id).where(Pool.pool == pool)) is not None:
        return None
    return (f"The Airflow pool {pool!r} does not exist: this run's tasks that query the ChatterFix "
            f"database wait until it does. Create it: airflow pools set {pool} 4 \"ChatterFix source "
            "database\" (or Admin > Pools; docs/configuration.md, The source pool).")


def check_run_start(dag_run) -> str | None:
    """On a starting run of the weekly DAG: the message (logged as an error, set as the run's note
    unless it has one) when the pool is missing. Never raises: a failed check must not stop the
    scheduler from starting the run."""
    if getattr(dag_run, "dag_id", None) != WEEKLY_DAG_ID:
        return None
    try:
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
        if session is None:
            return None
        message = missing_pool_message(session)
        if message is None:
            return None
        log.error("%s run %s: %s", WEEKLY_DAG_ID, dag_run.run_id, message)
        if not dag_run.note:
            dag_run.note = message
        return message
    except Exception:  # noqa: BLE001 - a diagnostic only
        log.exception("could not check the pool %s", SOURCE_POOL)
        return None
