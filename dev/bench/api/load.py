"""The API benchmark's load generator (``python -m dev.bench.api load``, its own process: it must not
share the server's GIL): asyncio + httpx, a closed-loop warm-up, then the open-loop (paced) and
closed-loop (saturation) phases, each request timed; the server's CPU time from ``/proc``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from dev.bench.api.config import (
    PHASES,
    ROUTES,
    TOKEN_ENV,
)


def _new_result() -> dict:
    return {
        "lat_ns": [],
        "errors": 0,
        "requests": 0,
        "seconds": 0.0,
        "error_samples": [],
        "lag_ns": [],
        "waited": 0,
    }


async def _run_load(
    base: str,
    token: str,
    *,
    concurrency: int,
    warmup: int,
    rounds: int,
    seconds: float,
    rate: float,
    phases: tuple[str, ...] = PHASES,
    seed: int = 6,
    server_pgid: int | None = None,
) -> dict:
    """Warm-up, then each phase's rounds (routes interleaved): ``{phase: {route: result}}``."""
    import random

    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    results = {phase: {name: _new_result() for name in ROUTES} for phase in phases}
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=30) as client:

        async def one(name: str, path: str, check_body: bool) -> tuple[bool, str | None]:
            try:
                r = await client.get(path)
                body = r.content
            except httpx.HTTPError as exc:
                return False, f"{type(exc).__name__}"
            if r.status_code != 200:
                return False, f"{r.status_code}: {body[:120]!r}"
            if name == "metrics":
                if not body.startswith(b'{"success":true'):
                    return False, f"body {body[:120]!r}"
                if check_body:
                    parsed = json.loads(body)
                    if parsed.get("success") is not True or "metrics" not in parsed:
                        return False, "metrics body without success/metrics"
            return True, None

        def record(res: dict | None, latency_ns: int, ok: bool, err: str | None) -> None:
            if res is None:  # warm-up
                return
            res["requests"] += 1
            if ok:
                res["lat_ns"].append(latency_ns)
            else:
                res["errors"] += 1
                if len(res["error_samples"]) < 5:
                    res["error_samples"].append(err)

        async def closed(
            name: str, res: dict | None, *, count: int | None = None, duration: float | None = None
        ) -> None:
            """``concurrency`` workers, each sending its next request as soon as the last one
            is answered (closed loop: the server's speed sets the rate)."""
            path = ROUTES[name]
            remaining = [count]
            deadline = time.perf_counter() + duration if duration else None
            checked = [False]

            async def worker() -> None:
                while True:
                    if deadline is not None and time.perf_counter() >= deadline:
                        return
                    if count is not None:
                        if remaining[0] <= 0:
                            return
                        remaining[0] -= 1
                    check = not checked[0]
                    checked[0] = True
                    t0 = time.perf_counter_ns()
                    ok, err = await one(name, path, check)
                    record(res, time.perf_counter_ns() - t0, ok, err)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            if res is not None:
                res["seconds"] += time.perf_counter() - began

        async def paced(name: str, res: dict, duration: float) -> None:
            """``concurrency`` connections, each sending one request every ``concurrency / rate``
            seconds from a random phase (open loop: ``rate`` requests/s in total, whatever the
            server's speed). A request is timed from the instant it was scheduled, so one that
            had to wait for its connection's previous answer counts that wait (no coordinated
            omission), minus the generator's own delay in sending it once it could (its event
            loop busy or the process not scheduled), which is reported apart."""
            path = ROUTES[name]
            interval_ns = int(concurrency / rate * 1e9)
            began_ns = time.perf_counter_ns()
            end_ns = began_ns + int(duration * 1e9)
            checked = [False]

            async def connection(offset_ns: int) -> None:
                due = began_ns + offset_ns
                ready = due
                while due < end_ns:
                    now = time.perf_counter_ns()
                    if due > now:
                        await asyncio.sleep((due - now) / 1e9)
                    start = time.perf_counter_ns()
                    lag = start - max(due, ready)  # the generator's delay, not the server's
                    res["lag_ns"].append(lag)
                    if ready > due:
                        res["waited"] += 1  # the previous answer came after this one was due
                    check = not checked[0]
                    checked[0] = True
                    ok, err = await one(name, path, check)
                    ready = time.perf_counter_ns()
                    record(res, ready - due - lag, ok, err)
                    due += interval_ns

            offsets = [rng.randrange(interval_ns) for _ in range(concurrency)]
            await asyncio.gather(*(connection(offset) for offset in offsets))
            res["seconds"] += (time.perf_counter_ns() - began_ns) / 1e9

        for name in ROUTES:
            await closed(name, None, count=warmup)
        order = list(ROUTES)
        for phase in phases:
            for rnd in range(rounds):
                for name in order if rnd % 2 == 0 else order[::-1]:
                    res = results[phase][name]
                    cpu_before = server_cpu_seconds(server_pgid)
                    if phase == "open":
                        await paced(name, res, seconds)
                    else:
                        await closed(name, res, duration=seconds)
                    if cpu_before is not None:
                        res["server_cpu_s"] = (
                            res.get("server_cpu_s", 0.0) + server_cpu_seconds(server_pgid) - cpu_before
                        )
    return results


def server_cpu_seconds(pgid: int | None) -> float | None:
    """CPU time (user + system) of the live processes of the API server's process group (the
    uvicorn supervisor and its workers): what the server itself spends, not PostgreSQL's part."""
    if not pgid:
        return None
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # pgrp; utime and stime are the 14th and 15th fields of stat
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def load_main(args) -> int:
    token = os.environ.pop(TOKEN_ENV, "")
    began, cpu = time.monotonic(), time.process_time()
    results = asyncio.run(
        _run_load(
            args.base,
            token,
            concurrency=args.concurrency,
            warmup=args.warmup,
            rounds=args.rounds,
            seconds=args.seconds,
            rate=args.rate,
            phases=tuple(args.phases.split(",")),
            server_pgid=args.server_pgid,
        )
    )
    results["generator"] = {"cpu_seconds": time.process_time() - cpu, "seconds": time.monotonic() - began}
    Path(args.out).write_text(json.dumps(results))
    return 0
