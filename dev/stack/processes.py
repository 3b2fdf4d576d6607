"""The demo stack's processes: each started in its own process group, its PID kept in a file, found
again by a later command, stopped with its whole group; waiting for an HTTP service to answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from include.investor_metrics.settings import PROJECT_ROOT


class Processes:
    """The processes of one stack: PID files in ``run_dir``, one log per process in ``log_dir``."""

    def __init__(self, run_dir: Path, log_dir: Path):
        self.run_dir = run_dir
        self.log_dir = log_dir

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        path = self.pidfile(name)
        if not path.exists():
            return None
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            path.unlink(missing_ok=True)
            return None
        return pid

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        """Start ``argv`` in a new process group (so ``down`` can stop all its children)."""
        existing = self.pid(name)
        if existing:
            return existing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(PROJECT_ROOT),
        )
        self.pidfile(name).write_text(str(proc.pid))
        return proc.pid

    def stop_process(self, name: str, timeout: float = 30) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and group_alive(pid):
            time.sleep(0.2)
        if group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pidfile(name).unlink(missing_ok=True)
        return True

    def wait_http(self, url: str, timeout: float, what: str, service: str) -> None:
        """Until ``url`` answers 200; a ``RuntimeError`` with the tail of ``service``'s log when it
        does not within ``timeout`` seconds or the process is gone."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback URL we built
                    if resp.status == 200:
                        return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
                last = exc
            if self.pid(service) is None:
                break
            time.sleep(1)
        log = self.log_dir / f"{service}.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{what} did not come up at {url} ({last}); last lines of {log}:\n{tail}")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader counts as gone once reaped; reap it if it is our child.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return has_live_members(pgid)


def has_live_members(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0] = state, fields[2] = pgrp
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def airflow_argv(*args: str) -> list[str]:
    """The ``airflow`` command of this environment, with ``args``."""
    return [str(Path(sys.executable).parent / "airflow"), *args]
