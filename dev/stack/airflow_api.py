"""A small client of Airflow's public REST API (``/api/v2``), for the demo stack and the tests.

It logs in the supported way (``POST /auth/token`` of the auth manager) and never prints the token
or the password.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


class AirflowAPIError(RuntimeError):
    pass


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._token: str | None = None

    def _login(self) -> str:
        body = json.dumps({"username": self._username, "password": self._password}).encode()
        req = urllib.request.Request(
            f"{self.base_url}/auth/token",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - our own server
            return json.load(resp)["access_token"]

    def request(self, method: str, path: str, payload: dict | None = None, *, ok=(200, 201, 202, 204)):
        if self._token is None:
            self._token = self._login()
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - our own server
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        if status not in ok:
            raise AirflowAPIError(f"{method} {path} → {status}: {raw[:500].decode(errors='replace')}")
        return json.loads(raw) if raw else None

    # ------------------------------------------------------------------ conveniences
    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict:
        """Wait until the DAG processor has parsed ``dag_id`` (it is then known to the API)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.request("GET", f"/api/v2/dags/{dag_id}")
            except AirflowAPIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/api/v2/importErrors").get("import_errors", [])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def dag_runs(self, dag_id: str, limit: int = 100, **filters) -> list[dict]:
        query = "&".join([f"limit={limit}", "order_by=-run_after", *(f"{k}={v}" for k, v in filters.items())])
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["dag_runs"]

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> dict:
        return self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"conf": conf or {}, "logical_date": logical_date}
        )

    def create_backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        *,
        max_active_runs: int = 3,
        reprocess_behavior: str = "none",
    ) -> dict:
        return self.request(
            "POST",
            "/api/v2/backfills",
            {
                "dag_id": dag_id,
                "from_date": from_date,
                "to_date": to_date,
                "max_active_runs": max_active_runs,
                "reprocess_behavior": reprocess_behavior,
            },
        )

    def backfills(self, dag_id: str) -> list[dict]:
        return self.request("GET", f"/api/v2/backfills?dag_id={dag_id}&limit=100").get("backfills", [])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str, note: str) -> None:
        """Mark one task instance ``success``, ``failed`` or ``skipped`` (as the UI's "Mark as")."""
        self.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
                     {"new_state": state, "note": note})

    def clear_tasks(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        """Clear these task instances of one run (whatever their state): the scheduler runs them again."""
        self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                     {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                      "reset_dag_runs": True})
