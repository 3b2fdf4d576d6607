"""A LocalExecutor whose task processes start with the pipeline's libraries already imported.

``PreloadingLocalExecutor`` imports ``preload_modules()`` in the scheduler before its workers are
forked (start method ``fork`` only): the workers and every task process they fork inherit them,
copy-on-write. Same queues, parallelism and task isolation as the LocalExecutor. The list is
``DEFAULT_PRELOAD_MODULES``, or ``INVESTOR_PRELOAD_MODULES`` (comma-separated; empty: none, and it is
exactly the LocalExecutor). A module that fails to import is logged and skipped (the task that
needs it imports it, and fails, itself). ``make demo`` sets it::

    AIRFLOW__CORE__EXECUTOR=include.investor_metrics.runtime.executor.PreloadingLocalExecutor

Why and at what cost: docs/adr/preloading-executor.md; measurements: docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import logging
import os
import time

from airflow.executors.local_executor import LocalExecutor

# The heavy libraries the pipeline's tasks import (include.investor_metrics.weekly.tasks imports
# them lazily).
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
