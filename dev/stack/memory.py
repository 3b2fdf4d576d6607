"""The demo stack's memory: PSS per kind of process and in total (``make status``,
``python -m dev.stack.devstack memory``).

PSS (proportional set size, ``Pss:`` in ``/proc/<pid>/smaps_rollup``) counts each page a process maps
divided by the number of processes sharing it, so the PSS of a set of processes adds up to the memory
they hold together, with copy-on-write pages shared by the forked executor workers counted once. RSS
would count those pages in every worker.

The processes counted: each service the stack started (its PID file in ``.local/run``), the embedded
PostgreSQL's postmaster, and all their descendants, found through the parent PIDs in ``/proc``, not
the process group (a task process starts its own session). Kinds come from the service and the
process title Airflow sets: ``airflow worker -- LocalExecutor: …`` is an executor worker, a process
under one is a task process (the task supervisor's child), ``airflow serve-logs`` a log server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
WORKER_TITLE = "airflow worker -- LocalExecutor"
LOG_SERVER_TITLE = "airflow serve-logs"
KIND_ORDER = ("postgres", "scheduler", "executor workers", "task processes", "api-server", "dag-processor",
              "triggerer", "log servers", "smtp-sink")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    title: str


@dataclass
class Kind:
    """The processes of one kind: how many, their PSS in KiB."""

    name: str
    pids: list[int] = field(default_factory=list)
    pss_kib: int = 0


def parse_pss_kib(smaps_rollup: str) -> int:
    """The ``Pss:`` figure (KiB) of a ``/proc/<pid>/smaps_rollup`` text."""
    for line in smaps_rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError("no Pss: line in smaps_rollup")


def pss_kib(pid: int, proc: Path = PROC) -> int | None:
    """The PSS of ``pid`` in KiB; None when it is gone (or not readable)."""
    try:
        return parse_pss_kib((proc / str(pid) / "smaps_rollup").read_text())
    except (OSError, ValueError):
        return None


def process_table(proc: Path = PROC) -> dict[int, Proc]:
    """Every live process: its parent and its title (the command line, which setproctitle rewrites)."""
    table: dict[int, Proc] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        comm, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        fields = rest.split()
        if fields[0] == "Z":  # a zombie holds no memory
            continue
        title = cmdline.replace(b"\0", b" ").decode(errors="replace").strip() or comm
        table[int(entry.name)] = Proc(int(entry.name), int(fields[1]), title)
    return table


def descendants(table: dict[int, Proc], root: int) -> list[int]:
    """``root`` and every process under it (``root`` first); empty when ``root`` is gone."""
    if root not in table:
        return []
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(sorted(children.get(pid, ()), reverse=True))
    return found


def kind_of(service: str, title: str, under_worker: bool) -> str:
    """The kind a process of ``service`` with ``title`` counts as."""
    if under_worker:
        return "task processes"
    if title.startswith(WORKER_TITLE):
        return "executor workers"
    if title.startswith(LOG_SERVER_TITLE):
        return "log servers"
    return service


def stack_memory(roots: dict[str, int], proc: Path = PROC) -> list[Kind]:
    """The PSS of every process under ``roots`` ({service: PID}), by kind (``KIND_ORDER`` first, then
    the others by name); a process that ends while it is read is left out."""
    table = process_table(proc)
    kinds: dict[str, Kind] = {}
    seen: set[int] = set()
    for service, root in roots.items():
        workers: set[int] = set()
        for pid in descendants(table, root):
            if pid in seen:
                continue
            seen.add(pid)
            p = table[pid]
            under_worker = p.ppid in workers
            kind = kind_of(service, p.title, under_worker)
            if kind in ("executor workers", "task processes"):
                workers.add(pid)
            pss = pss_kib(pid, proc)
            if pss is None:
                continue
            entry = kinds.setdefault(kind, Kind(kind))
            entry.pids.append(pid)
            entry.pss_kib += pss
    rank = {name: i for i, name in enumerate(KIND_ORDER)}
    return sorted(kinds.values(), key=lambda k: (rank.get(k.name, len(rank)), k.name))


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def format_memory(kinds: list[Kind]) -> str:
    """The table ``make status`` prints: kind, processes, PSS; then the total."""
    lines = [f"{'memory (PSS)':18s} {'processes':>9s} {'PSS':>10s}"]
    for k in kinds:
        lines.append(f"  {k.name:16s} {len(k.pids):9d} {_mib(k.pss_kib):>10s}")
    total = sum(k.pss_kib for k in kinds)
    lines.append(f"  {'total':16s} {sum(len(k.pids) for k in kinds):9d} {_mib(total):>10s}")
    return "\n".join(lines)


def as_json(kinds: list[Kind]) -> dict:
    """The same figures as a dict (KiB), for scripts and docs/performance.md."""
    return {
        "kinds": {k.name: {"processes": len(k.pids), "pss_kib": k.pss_kib} for k in kinds},
        "total": {"processes": sum(len(k.pids) for k in kinds), "pss_kib": sum(k.pss_kib for k in kinds)},
    }
