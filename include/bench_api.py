"""Latency of the investor API under load (issue 6, "Benchmark"): ``make bench BENCH_ARGS="--api"``
or ``.venv/bin/python -m include.bench_api``.

``GET /api/investor/metrics`` (the latest snapshot) against Airflow's own
``GET /api/v2/monitor/health`` (the floor: the same API server, no project code), both with 50
concurrent keep-alive connections on loopback. Targets: p99 of metrics ≤ 25 ms and
p99(metrics) / p99(health) ≤ 1.5.

What it does, in order:

1. PostgreSQL: the server ``include.bench`` uses (``DB_HOST``/``DB_*``, else 127.0.0.1:5432, else
   the embedded one). Fresh databases ``cfx_bench_api`` (metrics store) and ``cfx_bench_api_af``
   (Airflow's metadata) are created; the metrics schema is applied and ``--snapshots`` weekly
   snapshots (a real snapshot's structure) are published with ``include.store.publish``.
2. The stack: ``python -m include.devstack up`` with ``DEMO_SKIP_PIPELINE=1``, free ports and a
   temporary ``CFX_STATE_DIR`` (API server, scheduler, DAG processor, triggerer, as deployed).
3. A bearer token from ``POST /auth/token`` (admin); it goes to the load generator through the
   environment, never printed.
4. The load, from a separate process (the generator must not share the server's GIL): asyncio +
   ``httpx.AsyncClient`` (``max_connections`` = concurrency, keep-alive), ``--concurrency``
   workers; a warm-up of ``--warmup`` requests per route, then ``--rounds`` measured rounds of
   ``--seconds`` per route, the routes interleaved; each request timed with ``perf_counter_ns``.
   Every answer must be 200; the metrics body must start ``{"success":true`` (every one) and parse
   with ``success`` true (the first of each round).
5. The table (p50, p99, mean, requests/s, errors per route; p50 and p99 ratios), the machine and
   the verdicts. The stack is taken down and both databases dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from include.config import PROJECT_ROOT, PostgresSettings

ROUTES = {
    "metrics": "/api/investor/metrics",
    "health": "/api/v2/monitor/health",
}
P99_TARGET_MS = 25.0
RATIO_TARGET = 1.5
DB_NAME = "cfx_bench_api"
AF_DB_NAME = "cfx_bench_api_af"
LATEST_END = datetime(2026, 11, 22, 9, tzinfo=timezone.utc)
TOKEN_ENV = "CFX_BENCH_API_TOKEN"


def say(message: str = "") -> None:
    print(f"[bench-api] {message}" if message else "", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ================================================================================ the data
def _example_snapshot() -> dict:
    """The example snapshot of SPEC section 7 (the contract's shape and realistic figures)."""
    return json.loads(EXAMPLE_SNAPSHOT)


EXAMPLE_SNAPSHOT = """{
 "timestamp": "2026-11-22T09:00:00Z",
 "generated_at": "2026-11-22T09:03:12Z",
 "period": {
  "start": "2026-11-15T09:00:00Z",
  "end": "2026-11-22T09:00:00Z",
  "type": "weekly"
 },
 "system_health": {
  "uptime_percentage": 99.7,
  "status": "healthy",
  "services_total": 5,
  "services_healthy": 5,
  "avg_response_time_ms": 194.0,
  "p95_response_time_ms": 410.0,
  "error_rate": 0.3,
  "services": {
   "api": {
    "uptime_percentage": 99.9,
    "avg_response_time_ms": 120.5,
    "healthy": true
   }
  }
 },
 "ai_platform": {
  "total_requests": 18211,
  "chat_requests": 15002,
  "api_requests": 3209,
  "cache_hit_rate": 31.4,
  "error_rate": 0.8,
  "active_providers": 3,
  "accuracy_rate": 94.7,
  "avg_latency_ms": 812.0,
  "p95_latency_ms": 2210.0,
  "providers": {}
 },
 "financial": {
  "mrr": 42500.0,
  "arr": 510000.0,
  "active_customers": 127,
  "mrr_growth_rate": 8.2,
  "customer_growth_rate": 4.1,
  "new_mrr": 1200.0,
  "reactivation_mrr": 0.0,
  "expansion_mrr": 350.0,
  "contraction_mrr": 90.0,
  "churned_mrr": 400.0,
  "net_new_mrr": 1060.0,
  "quick_ratio": 3.16,
  "arpa": 334.65,
  "lead_conversion_rate": 12.5
 },
 "business_health": {
  "churn_risk": "low",
  "growth_trajectory": "strong",
  "churned_customers": 1,
  "logo_churn_rate": 0.79,
  "revenue_churn_rate": 1.15,
  "churn_rate_28d": 1.6,
  "customer_satisfaction": {
   "nps": 41.0,
   "responses": 58
  },
  "platform_utilization": 88.2,
  "at_risk_customers": 6,
  "mrr_at_risk": 1890.0
 },
 "data_quality": {
  "success": true,
  "warnings": []
 },
 "alerts": []
}"""


def snapshots(count: int) -> list[tuple[dict, datetime, datetime]]:
    base = _example_snapshot()
    out = []
    for week in range(count):
        end = LATEST_END - timedelta(weeks=week)
        start = end - timedelta(days=7)
        snap = copy.deepcopy(base)
        iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        snap["period"] = {"start": iso(start), "end": iso(end), "type": "weekly"}
        snap["timestamp"] = iso(end)
        snap["generated_at"] = iso(end + timedelta(minutes=3))
        fin = snap.get("financial")
        if isinstance(fin, dict) and isinstance(fin.get("mrr"), (int, float)):
            fin["mrr"] = round(fin["mrr"] * (1 - 0.004 * week), 2)
        out.append((snap, start, end))
    return out


def prepare_database(server, count: int) -> PostgresSettings:
    from include import bench, store
    from include.db import apply_metrics_schema, connect

    for name in (DB_NAME, AF_DB_NAME):
        bench.drop_database(server, name)
        bench.ensure_database(server, name)
    settings = server.database(DB_NAME)
    conn = connect(settings)
    try:
        apply_metrics_schema(conn)
        for snap, start, end in reversed(snapshots(count)):
            store.publish(conn, snap, period_start=start, period_end=end, run_id=f"bench_api__{end:%Y%m%d}",
                          write_latest=lambda latest: None)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), pg_size_pretty(pg_total_relation_size('investor_metrics.snapshots')) "
                        "FROM investor_metrics.snapshots")
            n, size = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    say(f"{DB_NAME}: {n} weekly snapshots published (table {size})")
    return settings


# ================================================================================ the stack
def stack_env(settings: PostgresSettings, state: Path, af_db: str = AF_DB_NAME) -> dict[str, str]:
    """The environment of a benchmark stack (devstack) on ``settings``' server, in ``state``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "AIRFLOW", "SMTP_", "INVESTOR_"))}
    env.update({
        "CFX_STATE_DIR": str(state / "state"),
        "DB_HOST": settings.host, "DB_PORT": str(settings.port), "DB_NAME": settings.dbname,
        "DB_USER": settings.user or "", "AIRFLOW_DB_NAME": af_db,
        "AIRFLOW_PORT": str(free_port()), "DEMO_SMTP_PORT": str(free_port()),
        "INVESTOR_ARCHIVE_DIR": str(state / "archive"),
        "INVESTOR_STAGING_DIR": str(state / "staging"),
        "DEMO_SKIP_PIPELINE": "1",
    })
    if settings.password:
        env["DB_PASSWORD"] = settings.password
    return env


def devstack(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "include.devstack", command], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def get_token(base: str, password: str) -> str:
    import httpx

    r = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    r.raise_for_status()
    return r.json()["access_token"]


# ================================================================================ the load
async def _run_load(base: str, token: str, concurrency: int, warmup: int, rounds: int, seconds: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    results = {name: {"lat_ns": [], "errors": 0, "requests": 0, "seconds": 0.0, "error_samples": []}
               for name in ROUTES}
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=30) as client:

        async def one(name: str, path: str, check_body: bool) -> tuple[int, bool, str | None]:
            t0 = time.perf_counter_ns()
            try:
                r = await client.get(path)
                body = r.content
            except httpx.HTTPError as exc:
                return time.perf_counter_ns() - t0, False, f"{type(exc).__name__}"
            dt = time.perf_counter_ns() - t0
            if r.status_code != 200:
                return dt, False, f"{r.status_code}: {body[:120]!r}"
            if name == "metrics":
                if not body.startswith(b'{"success":true'):
                    return dt, False, f"body {body[:120]!r}"
                if check_body:
                    parsed = json.loads(body)
                    if parsed.get("success") is not True or "metrics" not in parsed:
                        return dt, False, "metrics body without success/metrics"
            return dt, True, None

        async def phase(name: str, *, count: int | None = None, duration: float | None = None,
                        record: bool = True) -> None:
            path = ROUTES[name]
            res = results[name]
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
                    dt, ok, err = await one(name, path, check)
                    if record:
                        res["requests"] += 1
                        if ok:
                            res["lat_ns"].append(dt)
                        else:
                            res["errors"] += 1
                            if len(res["error_samples"]) < 5:
                                res["error_samples"].append(err)
                    elif not ok and len(res["error_samples"]) < 5:
                        res["error_samples"].append(f"warm-up: {err}")

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            if record:
                res["seconds"] += time.perf_counter() - began

        for name in ROUTES:
            await phase(name, count=warmup, record=False)
        order = list(ROUTES)
        for rnd in range(rounds):
            for name in (order if rnd % 2 == 0 else order[::-1]):
                await phase(name, duration=seconds)
    return results


def load_main(args) -> int:
    token = os.environ.pop(TOKEN_ENV, "")
    results = asyncio.run(_run_load(args.base, token, args.concurrency, args.warmup, args.rounds, args.seconds))
    Path(args.out).write_text(json.dumps(results))
    return 0


# ================================================================================ the report
def pct(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, int(-(-q * len(sorted_ns) // 1)) - 1))
    return sorted_ns[k] / 1e6


def summarise(results: dict) -> dict:
    out = {}
    for name, res in results.items():
        lat = sorted(res["lat_ns"])
        out[name] = {
            "path": ROUTES[name], "requests": res["requests"], "errors": res["errors"],
            "p50_ms": pct(lat, 0.50), "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99),
            "max_ms": lat[-1] / 1e6 if lat else float("nan"),
            "mean_ms": sum(lat) / len(lat) / 1e6 if lat else float("nan"),
            "rps": res["requests"] / res["seconds"] if res["seconds"] else 0.0,
            "error_samples": res["error_samples"],
        }
    m, h = out["metrics"], out["health"]
    out["ratios"] = {"p50": m["p50_ms"] / h["p50_ms"], "p99": m["p99_ms"] / h["p99_ms"],
                     "rps": m["rps"] / h["rps"] if h["rps"] else float("nan")}
    return out


def report(summary: dict, args, mach: dict, origin: str) -> bool:
    print()
    print(f"Investor API latency — {args.concurrency} concurrent keep-alive connections on loopback, "
          f"{args.rounds} × {args.seconds:g} s per route (interleaved) after {args.warmup} warm-up requests")
    print(f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram_gib']} GiB RAM, {mach['os']}, "
          f"Python {mach['python']}, Airflow {mach.get('airflow', '?')}; load average {mach['load_average']}")
    print(f"PostgreSQL: {origin}; API server: 1 worker (Airflow's default [api] workers)")
    print()
    header = f"{'route':<28} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} " \
             f"{'p99 ms':>8} {'max ms':>8} {'mean ms':>8}"
    print(header)
    print("-" * len(header))
    for name in ROUTES:
        s = summary[name]
        print(f"GET {s['path']:<24} {s['requests']:>9} {s['errors']:>6} {s['rps']:>8.0f} {s['p50_ms']:>8.1f} "
              f"{s['p90_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f} {s['mean_ms']:>8.1f}")
    r = summary["ratios"]
    print(f"{'ratio metrics / health':<28} {'':>9} {'':>6} {r['rps']:>8.2f} {r['p50']:>8.2f} {'':>8} "
          f"{r['p99']:>8.2f}")
    for name in ROUTES:
        for sample in summary[name]["error_samples"]:
            print(f"  {name} error: {sample}")
    print()
    p99 = summary["metrics"]["p99_ms"]
    ok_p99 = p99 <= P99_TARGET_MS
    ok_ratio = r["p99"] <= RATIO_TARGET
    ok_errors = summary["metrics"]["errors"] == 0 and summary["health"]["errors"] == 0
    print(f"target p99(metrics) ≤ {P99_TARGET_MS:g} ms:            {p99:.1f} ms → {'MET' if ok_p99 else 'MISSED'}")
    print(f"target p99(metrics) / p99(health) ≤ {RATIO_TARGET}: {r['p99']:.2f} → {'MET' if ok_ratio else 'MISSED'}")
    print(f"every answer 200 (and metrics success true): {'yes' if ok_errors else 'NO'}")
    return ok_p99 and ok_ratio and ok_errors


# ================================================================================ main
def bench_main(args) -> int:
    from include import bench

    mach = bench.machine()
    server = bench.find_server()
    say(f"PostgreSQL: {server.origin} ({server.settings.public_description()})")
    work = Path(tempfile.mkdtemp(prefix="cfx-bench-api-"))
    env = None
    load_proc = None
    try:
        settings = prepare_database(server, args.snapshots)
        env = stack_env(settings, work)
        base = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
        say(f"starting the stack (DEMO_SKIP_PIPELINE=1) on {base}")
        t0 = time.monotonic()
        up = devstack("up", env, 900)
        if up.returncode != 0:
            tail = "\n".join((up.stdout + up.stderr).splitlines()[-30:])
            raise bench.BenchError(f"devstack up failed:\n{tail}")
        say(f"stack up in {time.monotonic() - t0:.0f} s")
        password = json.loads((work / "state" / "secrets.json").read_text())["admin_password"]
        token = get_token(base, password)
        out = work / "load.json"
        say(f"load from a separate process: {args.concurrency} connections, warm-up {args.warmup}/route, "
            f"{args.rounds} × {args.seconds:g} s per route")
        load_proc = subprocess.Popen(
            [sys.executable, "-m", "include.bench_api", "load", "--base", base, "--out", str(out),
             "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
             "--rounds", str(args.rounds), "--seconds", str(args.seconds)],
            env=dict(os.environ, **{TOKEN_ENV: token}), cwd=PROJECT_ROOT)
        rc = load_proc.wait(timeout=args.rounds * args.seconds * len(ROUTES) + 600)
        load_proc = None
        if rc != 0:
            raise bench.BenchError(f"the load generator failed (exit {rc})")
        mach["load_average"] = bench._load_average()
        summary = summarise(json.loads(out.read_text()))
        ok = report(summary, args, mach, server.origin)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": mach, "routes": summary,
                                                   "targets": {"p99_ms": P99_TARGET_MS, "ratio": RATIO_TARGET},
                                                   "met": ok}, indent=2))
        return 0 if ok else 3
    finally:
        if load_proc is not None:
            load_proc.kill()
            load_proc.wait()
        if env is not None:
            say("taking the stack down")
            try:
                down = devstack("down", env, 300)
                if down.returncode != 0:
                    say(f"devstack down exited {down.returncode}: {down.stderr.strip()[-300:]}")
            except subprocess.TimeoutExpired:
                say("devstack down timed out")
        for name in (DB_NAME, AF_DB_NAME):
            try:
                bench.drop_database(server, name)
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                say(f"could not drop {name}: {exc}")
        say(f"dropped {DB_NAME} and {AF_DB_NAME}")
        shutil.rmtree(work, ignore_errors=True)
        if server.embedded_datadir is not None:
            from include import embedded_pg

            embedded_pg.stop(server.embedded_datadir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.bench_api", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    add_options(parser)
    load = sub.add_parser("load", help="(internal) the load generator")
    load.add_argument("--base", required=True)
    load.add_argument("--out", required=True)
    add_options(load)
    return parser


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=50, help="connections and concurrent workers (50)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests per route first (300)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per route, interleaved (3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one measured round (10 s)")
    parser.add_argument("--snapshots", type=int, default=52, help="weekly snapshots published first (52)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "load":
        return load_main(args)
    from include.bench import run_cli

    return run_cli("bench-api", bench_main, args, on_interrupt="stack stopped, databases dropped")


if __name__ == "__main__":
    sys.exit(main())
