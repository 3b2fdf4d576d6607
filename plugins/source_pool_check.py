"""A scheduler listener: a run of ``investor_metrics`` that starts while the pool ``chatterfix_source``
is missing gets an error in the scheduler log and a note on the run saying how to create it
(``include/investor_metrics/runtime/source_pool.py``)."""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class SourcePoolListener:
    @hookimpl
    def on_dag_run_running(self, dag_run, msg):
        from include.investor_metrics.runtime.source_pool import check_run_start

        check_run_start(dag_run)


class SourcePoolCheckPlugin(AirflowPlugin):
    name = "investor_metrics_source_pool_check"
    listeners = [SourcePoolListener()]
