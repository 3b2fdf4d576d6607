"""``POST /metrics/collect``: a queued manual run of the weekly DAG, inside the API server process.

``collect_conf`` turns the request into the run's ``conf`` (its params ``period_end``,
``send_email``); ``create_manual_run`` queues the run through Airflow's own
``airflow.api.common.trigger_dag`` (the helper behind Airflow's trigger routes), recording who
asked. A refusal is an ``InstantError`` (a bad ``period_end``, 422) or a ``CollectRefused``
carrying the HTTP status that says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from include.investor_metrics import period
from include.investor_metrics.api import DAG_ID
from include.investor_metrics.api.params import optional_instant


def collect_conf(period_end: str | None, send_email: bool, *, now: datetime) -> dict[str, Any]:
    """The ``conf`` of a manual run of the weekly DAG (its params ``period_end``, ``send_email``).
    ``period_end`` is normalised to UTC with ``Z``; a week that has not ended by ``now`` (beyond
    ``period.FUTURE_TOLERANCE`` of clock skew) is refused (``InstantInFuture``), as the run itself
    would refuse it."""
    conf: dict[str, Any] = {"send_email": bool(send_email)}
    end = optional_instant(period_end, "period_end")
    if end is not None:
        period.refuse_future(end, now, "period_end")
        conf["period_end"] = period.format_instant(end)
    return conf


@dataclass(frozen=True)
class ManualRun:
    dag_id: str
    dag_run_id: str
    state: str


class CollectRefused(RuntimeError):
    """Airflow refused the run; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_manual_run(conf: Mapping[str, Any], *, user_name: str | None, from_ui: bool,
                      now: datetime | None = None) -> ManualRun:
    """Queue a manual run of the weekly DAG with ``conf`` (its params are validated by Airflow),
    the way Airflow's own trigger routes do, recording who asked."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists, ParamValidationError
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    triggered_by = DagRunTriggeredByType.UI if from_ui else DagRunTriggeredByType.REST_API
    with create_session(scoped=False) as session:
        model = session.get(DagModel, DAG_ID)
        if model is None or model.is_stale:
            raise CollectRefused(404, f"the DAG {DAG_ID!r} is not loaded in Airflow (not parsed yet?)")
        if model.has_import_errors:
            raise CollectRefused(409, f"the DAG {DAG_ID!r} has import errors and cannot run: see "
                                      "the Airflow UI's import errors")
        try:
            run = trigger_dag(
                DAG_ID,
                triggered_by=triggered_by,
                run_type=DagRunType.MANUAL,
                triggering_user_name=user_name,
                run_after=now or datetime.now(timezone.utc),
                conf=dict(conf),
                session=session,
            )
        except DagNotFound:
            raise CollectRefused(404, f"the DAG {DAG_ID!r} is not loaded in Airflow (not parsed yet?)"
                                 ) from None
        except DagRunAlreadyExists:
            raise CollectRefused(409, "a run with the same id already exists: try again") from None
        except ParamValidationError as exc:
            raise CollectRefused(422, f"the DAG refused the parameters: {exc}") from None
        if run is None:  # pragma: no cover - trigger_dag returns the run it created
            raise CollectRefused(409, f"Airflow did not create a run of {DAG_ID!r}")
        session.flush()
        return ManualRun(dag_id=run.dag_id, dag_run_id=run.run_id,
                         state=str(getattr(run.state, "value", run.state)))
