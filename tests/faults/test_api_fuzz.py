"""Schema-driven fuzzing of the investor API (SPEC section 11, issue 13 point 10).

Schemathesis reads the API's own OpenAPI document as Airflow's API server serves it
(``/api/investor/openapi.json``, fetched with the admin's bearer token: read and trigger rights)
and runs every phase of ``st run`` (examples, coverage, fuzzing, stateful) with every check
against the app of ``airflow.api_fastapi.app.create_app()`` with the project's plugin, the metrics
store of ``tests/unit/api/fixtures.py`` and the DAG serialized in the session's metadata database:
``POST /metrics/collect`` creates real manual runs, which the test deletes again. Bounded: a fixed
seed, ``MAX_EXAMPLES`` cases per operation and phase, one worker.

The one rule JSON Schema cannot state is the clock's: a ``period_end`` to collect more than 5
minutes in the future is refused (422, documented in the schema's description). Before a
positive case is sent, a ``period_end`` in the future is moved into the past (same month, day and
time, a leap year before now), so every positive case is one the API must accept; negative cases
go out as drawn.

The end state asserted: no check failed, no response was a 5xx, every request was answered, and
every run the fuzzer created is queued (none of them is left behind).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from include.investor_metrics import period
from tests.unit.api.fixtures import api, bearer, metrics_db  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::pytest.PytestUnraisableExceptionWarning",
                                        "ignore:Using `httpx` with `starlette.testclient`")

MAX_EXAMPLES = 50
SEED = 13
OPENAPI = "/api/investor/openapi.json"
_YEAR = re.compile(r"^[0-9]{4}")


def _in_the_past(instant: str, now: datetime) -> str:
    """``instant`` with its year replaced by a leap year before ``now``'s (so 29 February stays a
    real day and the edge-day offsets stay within the syntax)."""
    year = now.year - 1 - ((now.year - 1) % 4)
    return _YEAR.sub(f"{year - 4:04d}", instant, count=1)


def _no_future_period_end(context, case, kwargs) -> None:
    """``before_call``: a positive case's ``period_end`` in the future is moved into the past."""
    from schemathesis import GenerationMode

    body = case.body
    if (case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE
            or not isinstance(body, dict) or not isinstance(body.get("period_end"), str)):
        return
    now = datetime.now(timezone.utc)
    try:
        end = period.parse_instant(body["period_end"])
    except period.InstantError:
        return
    if end > now:
        case.body = {**body, "period_end": _in_the_past(body["period_end"], now)}


def test_schemathesis_finds_no_failure_and_no_server_error(api):  # noqa: F811 - the fixture
    import schemathesis
    from schemathesis.engine import events, from_schema

    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "workers": 1,
        "headers": bearer(api, "admin"),
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all"},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": True}},
        "checks": {"enabled": True},
    })
    schema = schemathesis.openapi.from_asgi(OPENAPI, api.client.app, config=config,
                                            headers=bearer(api, "admin"))
    from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(_no_future_period_end, "before_call")

    before = _run_ids(api)
    requests = server_errors = 0
    failures: list[str] = []
    checks_run: set[str] = set()
    statuses: dict[int, int] = {}
    errors: list[str] = []
    finished = None
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                for interaction in event.recorder.interactions.values():
                    requests += 1
                    status = interaction.response.status_code if interaction.response else 0
                    statuses[status] = statuses.get(status, 0) + 1
                    server_errors += status >= 500
                for checks in event.recorder.checks.values():
                    for check in checks:
                        checks_run.add(check.name)
                        if check.status.name != "SUCCESS":
                            why = check.failure_info.failure if check.failure_info else check.status
                            failures.append(f"{event.recorder.label}: {check.name}: {why}")
            elif isinstance(event, events.NonFatalError | events.FatalError):
                errors.append(str(getattr(event, "info", None) or getattr(event, "exception", event)))
            elif isinstance(event, events.EngineFinished):
                finished = event
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(_no_future_period_end)
        created = [run_id for run_id in _run_ids(api) - before]
        for run_id in created:
            api.client.delete(f"/api/v2/dags/investor_metrics/dagRuns/{run_id}", headers=bearer(api))
    summary = (f"{requests} requests, {len(failures)} failed checks, {server_errors} 5xx, "
               f"statuses {statuses}, "
               f"checks {sorted(checks_run)}, {len(created)} runs created")
    print(summary)
    assert finished is not None and not errors, errors
    assert not failures, "\n".join(failures[:20]) + "\n" + summary
    assert server_errors == 0, summary
    assert requests >= 200, summary  # every operation was exercised in every phase
    assert {"not_a_server_error", "positive_data_acceptance", "negative_data_rejection",
            "response_schema_conformance", "status_code_conformance", "ignored_auth"} <= checks_run, summary
    assert 0 < len(created) <= 4 * MAX_EXAMPLES * 4, summary


def _run_ids(api) -> set[str]:  # noqa: F811 - the fixture
    answer = api.client.get("/api/v2/dags/investor_metrics/dagRuns?limit=1000", headers=bearer(api))
    assert answer.status_code == 200, answer.text
    return {run["dag_run_id"] for run in answer.json()["dag_runs"]}


def test_the_future_rule_is_the_only_one_moved(api):  # noqa: F811 - the fixture
    """What the hook moves is exactly what the API refuses for the clock alone."""
    now = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    moved = _in_the_past("9999-12-31T23:59:59+23:59", now)
    assert moved == "2020-12-31T23:59:59+23:59" and period.parse_instant(moved) < now
    assert period.parse_instant(_in_the_past("2028-02-29T00:00:00Z", now)).day == 29
    answer = api.client.post("/api/investor/metrics/collect", json={"period_end": "9999-12-31T23:59:59Z"},
                             headers=bearer(api))
    assert answer.status_code == 422 and "future" in answer.json()["error"]
