"""The README's run command, as a newcomer runs it: no DB_HOST, so an embedded PostgreSQL.

Runs `python -m dev.stack.devstack up` in an isolated state folder and on ports of its own, checks
that Airflow answers, that the demo data is there, and that `down` leaves no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from dev.stack import embedded_pg
from tests.conftest import PROJECT_ROOT, free_port

pytestmark = pytest.mark.stack


def _alive_in_group(pgid: int) -> list[str]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(stat.split(" (", 1)[1].split(")", 1)[0])
    return alive


@pytest.fixture()
def stack_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_"))}
    env.update(
        {
            "CFX_STATE_DIR": str(tmp_path / "state"),
            "AIRFLOW_PORT": str(free_port()),
            "DEMO_SMTP_PORT": str(free_port()),
            "DEMO_SLACK_PORT": str(free_port()),
            "EMBEDDED_PG_PORT": str(free_port()),
            "INVESTOR_ARCHIVE_DIR": str(tmp_path / "archive"),
            "DEMO_BACKFILL_WEEKS": "2",  # the full backfill is tested in test_scheduler_runs.py
        }
    )
    yield env
    # Whatever happened, take it down.
    subprocess.run([sys.executable, "-m", "dev.stack.devstack", "down"], env=env, cwd=PROJECT_ROOT,
                   capture_output=True, timeout=180)
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_run_command_comes_up_and_stops_cleanly(stack_env):
    up = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "up"], env=stack_env, cwd=PROJECT_ROOT,
                        capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "embedded server" in up.stdout
    assert "Airflow UI" in up.stdout and "Stop" in up.stdout
    # the latest complete week ran through the real scheduler and was archived
    assert "Latest week" in up.stdout
    latest = json.loads((Path(stack_env["INVESTOR_ARCHIVE_DIR"]) / "metrics_snapshot.json").read_text())
    assert latest["period"]["type"] == "weekly"
    assert latest["financial"]["active_customers"] > 0
    assert {"retention", "segments", "movements"} <= set(latest)
    # its summary e-mail went out after the history was built: it compares with the previous week
    assert "summary e-mail waits for the history" in up.stdout
    import email
    import email.policy
    import re

    summaries = [m for m in (email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                             for p in sorted((Path(stack_env["CFX_STATE_DIR"]) / "outbox").glob("*.eml")))
                 if m["Subject"].startswith("ChatterFix investor metrics")]
    assert summaries, up.stdout
    text = summaries[0].get_body(("plain",)).get_content()
    mrr_row = next(line for line in text.splitlines() if re.match(r"\s*MRR\s{2,}\$", line))
    assert not mrr_row.rstrip().endswith("—"), text

    # Slack: the latest week posted once to the demo's sink, compared with the backfilled week
    # before it; the backfilled weeks are not posted
    posts = sorted((Path(stack_env["CFX_STATE_DIR"]) / "slack").glob("*.json"))
    assert len(posts) == 1, (posts, up.stdout)
    blocks = json.loads(posts[0].read_text())["payload"]["blocks"]
    context_text = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert context_text.startswith("Change against the week ending"), blocks
    assert "Slack" in up.stdout and "1 update(s)" in up.stdout, up.stdout

    # the executor is sized to the machine: the LocalExecutor forks `parallelism` workers, no more
    from dev.stack import memory, sizing

    sizes = sizing.stack_sizes(sizing.machine_cpus(), stack_env)
    assert sizes.describe() in up.stdout
    run_dir = Path(stack_env["CFX_STATE_DIR"]) / "run"
    scheduler = int((run_dir / "scheduler.pid").read_text())
    kinds = {k.name: k for k in memory.stack_memory({"scheduler": scheduler})}
    assert len(kinds["executor workers"].pids) == sizes.parallelism, kinds  # 32 when not sized
    # and `make status` reports the whole stack's memory
    status = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "status"], env=stack_env,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    heading = [i for i, line in enumerate(lines) if line.startswith("memory (PSS)")]
    assert len(heading) == 1 and all(" running, pid " in line for line in lines[:heading[0]]), status.stdout
    # "  executor workers        4    123 MiB" → {"executor workers": (4, 123)}
    rows = {name.strip(): (int(n), float(mib.replace(",", "")))
            for name, n, mib, _ in (line.rsplit(None, 3) for line in lines[heading[0] + 1:])}
    assert rows["executor workers"][0] == sizes.parallelism, status.stdout
    assert {"postgres", "scheduler", "api-server", "dag-processor", "triggerer", "smtp-sink"} <= set(rows)
    total_n, total_mib = rows.pop("total")
    assert total_n == sum(n for n, _ in rows.values()), status.stdout
    assert abs(total_mib - sum(mib for _, mib in rows.values())) <= len(rows), status.stdout  # rounding
    assert total_mib > 500, status.stdout  # Airflow's five processes alone hold more than that

    port = stack_env["AIRFLOW_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=10) as resp:
        health = json.load(resp)
    assert health["metadatabase"]["status"] == "healthy"

    # the demo data is loaded into the embedded server
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=int(stack_env["EMBEDDED_PG_PORT"]), user="postgres",
                            dbname="chatterfix_cmms")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM customers")
        assert cur.fetchone()[0] >= 100
        cur.execute("SELECT count(*) FROM investor_metrics.service_health_checks")
        assert cur.fetchone()[0] > 0
    conn.close()

    # the login printed works against Airflow's own token endpoint
    secrets_file = Path(stack_env["CFX_STATE_DIR"]) / "secrets.json"
    password = json.loads(secrets_file.read_text())["admin_password"]
    assert password in up.stdout
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token", method="POST",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert "access_token" in json.load(resp)

    # running it again is safe and fast: nothing reloaded, nothing started twice
    pids_before = {p.name: p.read_text() for p in run_dir.glob("*.pid")}
    again = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "up"], env=stack_env,
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already loaded" in again.stdout
    assert {p.name: p.read_text() for p in run_dir.glob("*.pid")} == pids_before

    # down leaves nothing behind
    pgids = [int(v) for v in pids_before.values()]
    pg_pid = embedded_pg.server_pid(Path(stack_env["CFX_STATE_DIR"]) / "pgdata")
    assert pg_pid
    down = subprocess.run([sys.executable, "-m", "dev.stack.devstack", "down"], env=stack_env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    for pgid in pgids:
        assert _alive_in_group(pgid) == [], f"process group {pgid} still has {_alive_in_group(pgid)}"
    assert (not Path(f"/proc/{pg_pid}").exists()
            or "Z" in Path(f"/proc/{pg_pid}/stat").read_text().split(")")[1][:3])
    for key in ("AIRFLOW_PORT", "DEMO_SMTP_PORT", "EMBEDDED_PG_PORT"):
        assert not embedded_pg.port_open("127.0.0.1", int(stack_env[key])), f"{key} still open"
