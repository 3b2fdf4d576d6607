"""The bench's temporary workspace (``AIRFLOW_HOME``, DAGs, staging, archive, logs) and the child
processes it runs there: a clean environment each, own process group, log, a time limit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dev.bench.common import (
    BenchError,
    Server,
    say,
)
from dev.bench.weekly.config import (
    DAG_ID,
    DAG_TIMEOUT_S,
    DATASETS,
    NOOP_DAG_ID,
    NOOP_DAG_TEMPLATE,
    STEP_TIMEOUT_S,
)
from include.investor_metrics.settings import PROJECT_ROOT


@dataclass
class Workspace:
    """The bench's temporary folder: AIRFLOW_HOME, dags, staging, archive, logs."""

    root: Path
    server: Server
    bytecode_cache: bool = True
    children: list = field(default_factory=list)

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def noop_dags(self) -> Path:
        return self.root / "noop_dags"

    def env(self, database: str, *, dags_folder: Path | None = None, tag: str = "run") -> dict[str, str]:
        """A clean environment for a child: no inherited Airflow settings or connections (they
        would point the DAG at another database), the bench database as ``DB_*``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                (
                    "AIRFLOW__",
                    "AIRFLOW_CONN_",
                    "AIRFLOW_VAR_",
                    "DB_",
                    "INVESTOR_",
                    "HEALTH_CHECK_",
                    "SMTP_",
                    "EMAIL_",
                    "DATA_TEAM_",
                    "CHATTERFIX_CONN_ID",
                )
            )
        }
        s = self.server.database(database)
        env.update(
            {
                "DB_HOST": s.host,
                "DB_PORT": str(s.port),
                "DB_NAME": s.dbname,
                "DB_USER": s.user or "",
                "INVESTOR_TIMEZONE": "UTC",
                "INVESTOR_ARCHIVE_DIR": str(self.root / f"archive-{tag}"),
                "INVESTOR_STAGING_DIR": str(self.root / f"staging-{tag}"),
                "AIRFLOW_HOME": str(self.airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or PROJECT_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home}/airflow.db",
                "GX_ANALYTICS_ENABLED": "false",
                "PYTHONPATH": os.pathsep.join(
                    p for p in [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")] if p
                ),
            }
        )
        if s.password:
            env["DB_PASSWORD"] = s.password
        if self.bytecode_cache:
            # As a deployed worker has it: imports read compiled bytecode (kept in the workspace,
            # so the project's .venv is not touched), not the source compiled afresh each time.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.root / "pycache")
        return env

    def run(self, args: list[str], env: dict, log_name: str, timeout: float) -> None:
        """Run ``python <args>`` in its own process group, output to a log; on failure, its tail."""
        log_path = self.root / "logs" / log_name
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.children.append(proc)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                raise BenchError(
                    f"{' '.join(args[:4])} did not finish within {timeout:.0f} s; "
                    f"log tail:\n{self.tail(log_path)}"
                ) from None
            finally:
                if proc.poll() is None:
                    kill_group(proc)
                self.children.remove(proc)
        if code != 0:
            raise BenchError(f"{' '.join(args[:4])} failed (exit {code}); log tail:\n{self.tail(log_path)}")

    def tail(self, path: Path, lines: int = 40) -> str:
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return redact("\n".join("    " + line for line in text), self.server.settings.password)


def kill_group(proc: subprocess.Popen) -> None:
    """End a child this bench started, and its own children (its process group), by its id."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def redact(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


def airflow_migrate(ws: Workspace) -> float:
    began = time.monotonic()
    ws.run(["-m", "airflow", "db", "migrate"], ws.env(DATASETS["bench"]), "airflow-db-migrate.log", 600)
    return time.monotonic() - began


def run_steps(ws: Workspace, scale: str, shape: list[dict], profile: set[str] = frozenset()) -> dict:
    """Each pipeline step in its own subprocess, in the DAG's order; their results. With
    ``profile``, a separate sequence whose named steps run under cProfile (the profiler's own
    memory and time would distort the measured one); returns {task: profile text} then."""
    database = DATASETS[scale]
    tag = f"profile-{scale}" if profile else f"steps-{scale}"
    work = ws.root / tag
    work.mkdir(parents=True, exist_ok=True)
    env = ws.env(database, tag=tag)
    (work / "shape.json").write_text(json.dumps(shape))
    tasks = [t["task_id"] for t in shape]
    results = {}
    for task in tasks:
        args = ["-m", "dev.bench", "step", task, "--work", str(work)]
        if task in profile:
            args.append("--profile")
        ws.run(args, env, f"{tag}-{task}.log", STEP_TIMEOUT_S)
        results[task] = json.loads((work / f"{task}.result.json").read_text())
        if not profile:
            say(
                f"  {scale:<8} {task:<25} {results[task]['seconds']:7.2f} s  peak RSS "
                f"{results[task]['max_rss_mb']:6.0f} MiB"
                + ("  (skipped)" if results[task]["skipped"] else "")
            )
    if profile:
        return {task: (work / f"{task}.profile.txt").read_text() for task in tasks if task in profile}
    return results


def dag_shape(ws: Workspace) -> list[dict]:
    """The real DAG's tasks in topological order: upstream task ids, and which upstream results
    each task function takes as arguments (its XCom inputs, in order)."""
    out = ws.root / "shape.json"
    ws.run(["-m", "dev.bench", "shape", "--out", str(out)], ws.env(DATASETS["bench"]), "shape.log", 600)
    return json.loads(out.read_text())


def run_dag(
    ws: Workspace, kind: str, n: int, *, shape: list[dict] | None = None, label: str = "run"
) -> list[dict]:
    """``dag.test()`` of the real DAG (``project``) or the orchestration floor (``noop``), n times."""
    if kind == "noop":
        ws.noop_dags.mkdir(parents=True, exist_ok=True)
        source = NOOP_DAG_TEMPLATE.format(
            dag_id=DAG_ID, noop_id=NOOP_DAG_ID, shape=[(t["task_id"], t["upstream"]) for t in shape or []]
        )
        (ws.noop_dags / "orchestration_floor.py").write_text(source)
        env = ws.env(DATASETS["bench"], dags_folder=ws.noop_dags, tag="noop")
    else:
        env = ws.env(DATASETS["bench"], tag="dag")
    runs = []
    for i in range(n):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"dagrun-{kind}-{label}-{i}")
        out, log_name = ws.root / f"{stem}.json", f"{stem}.log"
        ws.run(["-m", "dev.bench", "dagrun", kind, "--out", str(out)], env, log_name, DAG_TIMEOUT_S)
        result = json.loads(out.read_text())
        if result["state"] != "success":
            failed = {t: r["state"] for t, r in result["tasks"].items() if r["state"] != "success"}
            raise BenchError(
                f"the {kind} DAG run ended {result['state']} ({failed}); log tail:\n"
                f"{ws.tail(ws.root / 'logs' / log_name)}"
            )
        say(f"  {kind:<8} {label}" + (f" {i + 1}/{n}" if n > 1 else "") + f": {result['seconds']:.2f} s")
        runs.append(result)
    return runs


def measure_imports(ws: Workspace) -> list[dict]:
    out = ws.root / "imports.json"
    ws.run(["-m", "dev.bench", "imports", "--out", str(out)], ws.env(DATASETS["bench"]), "imports.log", 600)
    return json.loads(out.read_text())
