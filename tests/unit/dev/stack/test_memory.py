"""The demo stack's memory report (``dev/stack/memory.py``) on real processes the test starts: their
PSS read from ``/proc``, their children counted with them, Airflow's process titles sorted into kinds,
a process that is gone left out, and the totals adding up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dev.stack import memory

# Holds ~40 MiB of its own; as "parent", first starts one child (the same script). Both sleep until killed.
HOLDER = """
import subprocess, sys, time
ballast = bytearray(40 * 1024 * 1024)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
if sys.argv[1:] == ["parent"]:
    child = subprocess.Popen([sys.executable, sys.argv[0]], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"  # its 40 MiB touched
print("ready", flush=True)
time.sleep(600)
"""

# A process titled like a LocalExecutor worker that starts a task process, as Airflow's do.
WORKER = """
import subprocess, sys, time
from setproctitle import setproctitle
setproctitle("airflow worker -- LocalExecutor: <idle>")
task = subprocess.Popen([sys.executable, "-c",
                         "import time; from setproctitle import setproctitle; "
                         "setproctitle('airflow worker -- 01a2-task'); time.sleep(600)"])
print("ready", flush=True)
time.sleep(600)
"""


def _start(tmp_path: Path, name: str, source: str, *args: str) -> subprocess.Popen:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _children(pid: int) -> list[int]:
    return [p.pid for p in memory.process_table().values() if p.ppid == pid]


@pytest.fixture()
def started(tmp_path):
    procs: list[subprocess.Popen] = []

    def start(name, source, *args):
        procs.append(_start(tmp_path, name, source, *args))
        return procs[-1]

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_for_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = _children(pid)
        if len(kids) >= count:
            return kids
        time.sleep(0.1)
    raise AssertionError(f"process {pid} did not start {count} child(ren)")


def test_two_services_and_their_children_are_counted_with_their_pss(started):
    one = started("one", HOLDER, "parent")
    two = started("two", HOLDER)
    (child,) = _wait_for_children(one.pid, 1)

    kinds = {k.name: k for k in memory.stack_memory({"one": one.pid, "two": two.pid})}

    assert sorted(kinds) == ["one", "two"]
    assert sorted(kinds["one"].pids) == sorted([one.pid, child])
    assert kinds["two"].pids == [two.pid]
    for pid in (one.pid, child, two.pid):
        assert memory.pss_kib(pid) > 30 * 1024  # each holds its own 40 MiB
    # the sum of its processes (read again: shared pages may have moved by a little since)
    assert abs(kinds["one"].pss_kib - memory.pss_kib(one.pid) - memory.pss_kib(child)) < 2048
    report = memory.as_json(list(kinds.values()))
    assert report["total"]["processes"] == 3
    assert report["total"]["pss_kib"] == kinds["one"].pss_kib + kinds["two"].pss_kib
    table = memory.format_memory(list(kinds.values()))
    assert table.splitlines()[-1].split()[:2] == ["total", "3"]


def test_executor_workers_and_their_task_processes_are_told_apart(started):
    scheduler = started("scheduler", WORKER)
    (task,) = _wait_for_children(scheduler.pid, 1)  # a task process by its parent, whatever its title

    kinds = {k.name: k for k in memory.stack_memory({"scheduler": scheduler.pid})}

    assert kinds["executor workers"].pids == [scheduler.pid]
    assert kinds["task processes"].pids == [task]
    assert "scheduler" not in kinds
    assert all(k.pss_kib > 0 for k in kinds.values())
    assert [k.name for k in kinds.values()] == ["executor workers", "task processes"]  # KIND_ORDER


def test_a_process_counted_twice_or_gone_is_left_out(started):
    one = started("one", HOLDER)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=10)

    kinds = memory.stack_memory({"one": one.pid, "again": one.pid, "gone": gone.pid})

    assert [(k.name, k.pids) for k in kinds] == [("one", [one.pid])]
    assert memory.pss_kib(gone.pid) is None


def test_smaps_rollup_without_pss_is_an_error():
    with pytest.raises(ValueError, match="no Pss"):
        memory.parse_pss_kib("Rss:  100 kB\n")
    assert memory.parse_pss_kib(Path("/proc/self/smaps_rollup").read_text()) > 0


def test_status_and_memory_report_the_stacks_own_processes(started, tmp_path, monkeypatch, capsys):
    from dev.stack import devstack

    sink = started("sink", HOLDER)
    run = tmp_path / "state" / "run"
    run.mkdir(parents=True)
    (run / "smtp-sink.pid").write_text(str(sink.pid))
    for name in list(os.environ):
        if name.startswith(("DB_", "AIRFLOW", "CFX_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CFX_STATE_DIR", str(tmp_path / "state"))

    assert devstack.main(["memory", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kinds"]["smtp-sink"]["processes"] == 1
    assert report["kinds"]["smtp-sink"]["pss_kib"] > 30 * 1024
    assert report["total"] == report["kinds"]["smtp-sink"]  # nothing else of this stack runs

    assert devstack.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"smtp-sink       running, pid {sink.pid}" in out and "scheduler       stopped" in out
    assert out.splitlines()[-1].split()[:2] == ["total", "1"]
