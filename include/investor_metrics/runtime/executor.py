"""A LocalExecutor whose task processes start with the pipeline's libraries already imported.

Airflow 3's LocalExecutor forks its worker processes from the scheduler when it starts, and each
worker forks a fresh process for every task instance. Every task of ``investor_metrics`` then
imports pandas, pyarrow, psycopg2, the Postgres provider and, in ``validate_data``, Great
Expectations — about 2.5 s of CPU per weekly run (GX alone: 1.6-1.8 s, most of it scipy and
altair, which GX imports with its expectation catalogue), paid again by every run and every
backfilled week. It is the largest part of the difference between a run and the same DAG with
tasks that do nothing.

``PreloadingLocalExecutor`` imports those modules once, in the scheduler, *before* the workers are
forked (the same idea as gunicorn's ``--preload`` or a Celery worker importing its app): the
workers and every task process they fork inherit them, copy-on-write. Nothing else changes — same
queues, same parallelism, same task isolation (each task is still its own process).

Configuration (``make demo`` sets it; any deployment can)::

    AIRFLOW__CORE__EXECUTOR=include.investor_metrics.runtime.executor.PreloadingLocalExecutor

``INVESTOR_PRELOAD_MODULES`` (comma-separated) replaces the default module list; an empty value
turns preloading off (then it is exactly the LocalExecutor). A module that fails to import is
logged and skipped: the task that needs it will import it (and fail) itself, where the error
belongs.

Cost: the scheduler's resident memory grows by the modules' size (~250 MB), shared with the
workers rather than duplicated per task; the scheduler starts ~2 s later. No connection, thread
pool or file is opened by these imports, so forking after them is safe.
"""

from __future__ import annotations

import importlib
import logging
import os
import time

from airflow.executors.local_executor import LocalExecutor

# The heavy libraries the pipeline's tasks import (include.investor_metrics.weekly.tasks imports them lazily).
DEFAULT_PRELOAD_MODULES = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "psycopg2",
    "sqlalchemy",
    "airflow.providers.postgres.hooks.postgres",
    "airflow.providers.smtp.hooks.smtp",
    "great_expectations",
    "jinja2",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
)
# Third-party libraries only: the project's own ``include.*`` modules are cheap to import (they
# import the heavy libraries lazily) and are left out on purpose, so that an edit to them takes
# effect in the next task without restarting the scheduler — a preloaded module would stay as it
# was when the scheduler started (the usual price of preloading). Upgrading a library listed here
# needs a scheduler (or Celery worker) restart, as any deployment of new packages does.

log = logging.getLogger(__name__)


def preload_modules(env: dict[str, str] | None = None) -> tuple[str, ...]:
    """The modules to preload: ``INVESTOR_PRELOAD_MODULES`` when set (empty: none), else the default."""
    raw = (os.environ if env is None else env).get("INVESTOR_PRELOAD_MODULES")
    if raw is None:
        return DEFAULT_PRELOAD_MODULES
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def preload(modules: tuple[str, ...]) -> dict[str, float | None]:
    """Import ``modules``; {module: seconds, or None when it failed}."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # GX logs a line per public API it registers while importing: keep the scheduler log readable.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    timings: dict[str, float | None] = {}
    for name in modules:
        began = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:
            log.warning("preload: could not import %s (%s: %s); the tasks will import it themselves",
                        name, type(exc).__name__, exc)
            timings[name] = None
        else:
            timings[name] = time.perf_counter() - began
    return timings


class PreloadingLocalExecutor(LocalExecutor):
    """LocalExecutor that imports the pipeline's libraries before forking its workers."""

    def start(self) -> None:
        modules = preload_modules()
        if modules and self.is_mp_using_fork:
            began = time.perf_counter()
            timings = preload(modules)
            loaded = sum(1 for t in timings.values() if t is not None)
            self.log.info("Preloaded %d of %d modules for the task processes in %.2f s", loaded, len(modules),
                          time.perf_counter() - began)
        elif modules:
            # spawn start method: workers do not inherit the parent's modules, preloading would only cost
            self.log.info("Not preloading: multiprocessing start method is not fork")
        super().start()
