"""The demo's order of runs (``dev/stack/pipeline_runs.py``) against a stand-in of the Airflow API that
plays the scheduler: the latest week's summary e-mail is held until every week of the history is
done, then released; it is never held when the history is already there."""

from __future__ import annotations

import json

from dev.stack import pipeline_runs
from dev.stack.env import Stack

LATEST = "scheduled__2026-11-29T09:00:00+00:00"


class Scheduler:
    """Each poll (``dag_runs``) moves time on by one step: the latest run and two backfill runs."""

    def __init__(self, weeks: int, *, summary_state=None, history_built=False):
        self.weeks, self.step, self.log = weeks, 0, []
        self.summary = {"state": summary_state, "note": None}
        self.history_built = history_built
        self.latest_state = "running"

    def wait_for_dag(self, dag_id):
        return {}

    def import_errors(self):
        return []

    def set_paused(self, dag_id, paused):
        self.log.append(("paused", dag_id, paused))

    def backfills(self, dag_id):
        return [{"id": 1}] if self.history_built else []

    def create_backfill(self, dag_id, start, end, max_active_runs):
        self.log.append(("backfill", dag_id))

    def dag_runs(self, dag_id, limit):
        self.step += 1
        done = self.weeks if self.history_built else min(self.weeks, self.step - 1)
        if self.step >= 3 and self.latest_state == "running":
            # the latest run reaches its e-mail tasks: a summary not held would run (and e-mail) now
            if self.summary["state"] is None:
                self.summary["state"] = "success"
                self.log.append(("summary sent", done))
            self.latest_state = "success"
        if self.latest_state == "queued":  # cleared: the summary runs now
            self.summary["state"] = "success"
            self.log.append(("summary sent", done))
            self.latest_state = "success"
        backfill = [{"run_type": "backfill", "state": "success" if i < done else "running",
                     "dag_run_id": f"backfill__{i}"} for i in range(self.weeks)]
        return [{"run_type": "scheduled", "state": self.latest_state, "dag_run_id": LATEST}, *backfill]

    def task_instance(self, dag_id, run_id, task_id):
        assert (run_id, task_id) == (LATEST, "email.send_weekly_summary")
        return dict(self.summary)

    def set_task_state(self, dag_id, run_id, task_id, state, note):
        self.summary = {"state": state, "note": note}
        self.log.append(("held", task_id))

    def request(self, method, path, payload=None):
        """The asset endpoints the demo uses to announce the latest week to the Slack DAG."""
        if method == "GET" and path.startswith("/api/v2/assets?"):
            return {"assets": [{"id": 7, "name": "investor_metrics_snapshot"}]}
        assert (method, path) == ("POST", "/api/v2/assets/events"), (method, path)
        self.log.append(("announced", payload["asset_id"], payload["extra"]))
        return {}

    def clear_tasks(self, dag_id, run_id, task_ids):
        assert task_ids == ["email.send_weekly_summary"]
        self.summary = {"state": None, "note": None}
        self.latest_state = "queued"
        self.log.append(("released",))


def stack(tmp_path, weeks: int) -> Stack:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "metrics_snapshot.json").write_text(json.dumps({
        "period": {"start": "2026-11-22T09:00:00Z", "end": "2026-11-29T09:00:00Z", "type": "weekly"},
        "financial": {"mrr": 1.0, "active_customers": 1}}))
    return Stack({"DEMO_BACKFILL_WEEKS": str(weeks), "INVESTOR_ARCHIVE_DIR": str(archive),
                  "CFX_STATE_DIR": str(tmp_path / "state")})


def test_the_first_summary_e_mail_goes_out_after_the_whole_history(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_runs.time, "sleep", lambda _s: None)
    client = Scheduler(weeks=4)
    headline = pipeline_runs.run_history_and_latest_week(stack(tmp_path, 4), client)
    assert "Latest week" in headline
    events = [e[0] for e in client.log if e[0] in ("held", "released", "summary sent", "announced")]
    assert events == ["held", "released", "summary sent", "announced"]
    # the Slack DAG is unpaused only then, and told about the latest week (compared with the history)
    slack = [i for i, e in enumerate(client.log) if e[:2] == ("paused", "investor_metrics_slack")]
    assert [client.log[i] for i in slack] == [("paused", "investor_metrics_slack", False)]
    assert slack[0] > next(i for i, e in enumerate(client.log) if e[0] == "summary sent")
    assert client.log[-1] == ("announced", 7, {"period_end": "2026-11-29T09:00:00Z", "period_type": "weekly",
                                              "mrr": 1.0, "series": "weekly", "announce": True})
    assert ("summary sent", 4) in client.log  # every one of the 4 weeks of history was done first


def test_nothing_is_held_when_the_history_is_already_there(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_runs.time, "sleep", lambda _s: None)
    client = Scheduler(weeks=4, summary_state="success", history_built=True)
    pipeline_runs.run_history_and_latest_week(stack(tmp_path, 4), client)
    assert not [e for e in client.log if e[0] in ("held", "released", "backfill")]
