"""Celery workers whose task processes start with the pipeline's libraries already imported.

The Celery counterpart of ``include.investor_metrics.runtime.executor.PreloadingLocalExecutor``.
An ``airflow celery worker`` forks its prefork pool processes from its main process; in Airflow 3
each pool process runs a task's supervisor, which forks the task process. Importing pandas,
pyarrow, Great Expectations, ... (``include.investor_metrics.runtime.executor.DEFAULT_PRELOAD_MODULES``,
or ``INVESTOR_PRELOAD_MODULES``) in the worker's main process *before the pool starts* makes every
pool process and every task process inherit them, copy-on-write, instead of importing them again
(~2.5 s CPU per weekly run).

Celery's ``worker_init`` signal fires in the worker's main process before the pool is created.
This module connects a handler to it when imported, and Airflow imports it in every process that
builds the Celery app, the worker's main process among them (before ``worker_main`` starts the
worker) — through the ``[celery] celery_config_options`` option::

    AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=include.investor_metrics.runtime.celery_config.CELERY_CONFIG

``CELERY_CONFIG`` *is* the provider's ``DEFAULT_CELERY_CONFIG`` (the same object, unchanged): the
Celery settings stay Airflow's, built from ``[celery]``. Being the same object matters for
multi-team workers too: the provider skips a configured dict that is its default, so a team's own
config is kept.

The scheduler, the API server and ``celery inspect``/``flower`` import this module as well; there the
signal never fires, so nothing is preloaded. ``INVESTOR_PRELOAD_MODULES=`` (empty) turns it off.
"""

from __future__ import annotations

import logging
import time

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

log = logging.getLogger(__name__)

# What [celery] celery_config_options points at: Airflow's default Celery configuration.
CELERY_CONFIG = DEFAULT_CELERY_CONFIG


@worker_init.connect(dispatch_uid="include.investor_metrics.runtime.celery_config.preload_on_worker_init")
def preload_on_worker_init(sender=None, **_kwargs) -> None:
    """In the worker's main process, before its pool processes are forked: import the modules."""
    # imported here, not at the top: the other processes that import this module need none of it
    from include.investor_metrics.runtime.executor import preload, preload_modules

    modules = preload_modules()
    if not modules:
        log.info("Celery worker: not preloading (INVESTOR_PRELOAD_MODULES is empty)")
        return
    began = time.perf_counter()
    timings = preload(modules)
    loaded = sum(1 for t in timings.values() if t is not None)
    log.info("Celery worker: preloaded %d of %d modules for the pool and task processes in %.2f s",
             loaded, len(modules), time.perf_counter() - began)
