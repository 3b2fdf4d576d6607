"""The API benchmark's figures: percentiles per phase and route, the ratios metrics / health, the
verdicts on the open-loop phase, and the printed table."""

from __future__ import annotations

from dev.bench.api.config import (
    P99_TARGET_MS,
    PHASES,
    RATIO_TARGET,
    ROUTES,
    TARGET_PHASE,
)


def pct(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, int(-(-q * len(sorted_ns) // 1)) - 1))
    return sorted_ns[k] / 1e6


def summarise(results: dict) -> dict:
    """Per phase, per route: counts, rate and latency percentiles (ms); and the ratios."""
    out = {}
    for phase, routes in results.items():
        if phase not in PHASES:
            out[phase] = routes  # the generator's own CPU time
            continue
        summary = {}
        for name, res in routes.items():
            lat = sorted(res["lat_ns"])
            lag = sorted(res.get("lag_ns", []))
            summary[name] = {
                "path": ROUTES[name],
                "requests": res["requests"],
                "errors": res["errors"],
                "p50_ms": pct(lat, 0.50),
                "p90_ms": pct(lat, 0.90),
                "p99_ms": pct(lat, 0.99),
                "max_ms": lat[-1] / 1e6 if lat else float("nan"),
                "mean_ms": sum(lat) / len(lat) / 1e6 if lat else float("nan"),
                "rps": res["requests"] / res["seconds"] if res["seconds"] else 0.0,
                "server_cpu_ms_per_request": (
                    1000 * res["server_cpu_s"] / res["requests"]
                    if "server_cpu_s" in res and res["requests"]
                    else None
                ),
                "waited": res.get("waited", 0),
                "generator_lag_p50_ms": pct(lag, 0.50) if lag else None,
                "generator_lag_p99_ms": pct(lag, 0.99) if lag else None,
                "error_samples": res["error_samples"],
            }
        m, h = summary["metrics"], summary["health"]
        summary["ratios"] = {
            "p50": m["p50_ms"] / h["p50_ms"],
            "p99": m["p99_ms"] / h["p99_ms"],
            "rps": m["rps"] / h["rps"] if h["rps"] else float("nan"),
            "cpu": (
                m["server_cpu_ms_per_request"] / h["server_cpu_ms_per_request"]
                if m["server_cpu_ms_per_request"] and h["server_cpu_ms_per_request"]
                else None
            ),
        }
        out[phase] = summary
    return out


def _f(value, fmt: str, missing: str) -> str:
    return missing if value is None else fmt.format(value)


PHASE_TITLES = {
    "open": "open loop (paced)",
    "closed": "closed loop (saturation)",
}


def verdicts(summary: dict) -> dict:
    """The issue's targets, checked on the open-loop phase (see the module docstring)."""
    checked = summary[TARGET_PHASE]
    p99, ratio = checked["metrics"]["p99_ms"], checked["ratios"]["p99"]
    errors = sum(summary[phase][name]["errors"] for phase in PHASES if phase in summary for name in ROUTES)
    return {
        "phase": TARGET_PHASE,
        "p99_ms": p99,
        "p99_met": p99 <= P99_TARGET_MS,
        "ratio": ratio,
        "ratio_met": ratio <= RATIO_TARGET,
        "errors": errors,
        "errors_met": errors == 0,
    }


def report(summary: dict, args, mach: dict, origin: str, workers: int) -> bool:
    print()
    print(
        f"Investor API latency — {args.concurrency} concurrent keep-alive connections on loopback, per phase "
        f"{args.rounds} × {args.seconds:g} s per route (routes interleaved), after {args.warmup} warm-up "
        "requests per route"
    )
    print(
        f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram_gib']} GiB RAM, {mach['os']}, "
        f"Python {mach['python']}, Airflow {mach.get('airflow', '?')}"
    )
    during = mach.get("load_average_1min_during")
    print(
        f"load average (1, 5, 15 min): at the start (before the stack) {mach.get('load_average')}, "
        f"before the load {mach['load_average_before']}, after {mach['load_average_after']}"
        + (f"; 1-min during the load {during[0]:.2f}–{during[1]:.2f}" if during else "")
        + (
            "   BUSY: other work shares the CPUs, compare the routes within this run only"
            if mach.get("busy")
            else ""
        )
    )
    print(
        f"PostgreSQL: {origin}; API server: {workers} uvicorn worker process{'es' if workers > 1 else ''} "
        f"([api] workers = {workers})"
    )
    header = (
        f"{'phase':<26} {'route':<28} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>8} "
        f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8} {'CPU ms/req':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    phases = [phase for phase in PHASES if phase in summary]
    for phase in phases:
        title = PHASE_TITLES[phase]
        for name in ROUTES:
            s = summary[phase][name]
            cpu = _f(s.get("server_cpu_ms_per_request"), "{:>10.2f}", "—".rjust(10))
            print(
                f"{title:<26} GET {s['path']:<24} {s['requests']:>8} {s['errors']:>6} {s['rps']:>7.1f} "
                f"{s['p50_ms']:>8.1f} {s['p90_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['max_ms']:>8.1f} "
                f"{s['mean_ms']:>8.1f} {cpu}"
            )
            title = ""
        r = summary[phase]["ratios"]
        cpu = _f(r.get("cpu"), "{:>10.2f}", "")
        print(
            f"{'':<26} {'ratio metrics / health':<28} {'':>8} {'':>6} {r['rps']:>7.2f} {r['p50']:>8.2f} "
            f"{'':>8} {r['p99']:>8.2f} {'':>8} {'':>8} {cpu}"
        )
    for phase in phases:
        for name in ROUTES:
            for sample in summary[phase][name]["error_samples"]:
                print(f"  {phase} {name} error: {sample}")
    print()
    if "open" in summary:
        o = summary["open"]
        line = (
            f"open loop: {args.rate:g} req/s offered per route ({args.concurrency} connections × "
            f"{args.rate / args.concurrency:g} req/s, random phases); achieved "
            f"{o['metrics']['rps']:.1f} (metrics), {o['health']['rps']:.1f} (health) req/s; "
            f"requests that found their connection busy: {o['metrics']['waited']} + {o['health']['waited']}; "
            f"generator's own send delay p50/p99 {o['metrics']['generator_lag_p50_ms']:.2f}/"
            f"{o['metrics']['generator_lag_p99_ms']:.2f} ms (metrics), "
            f"{o['health']['generator_lag_p50_ms']:.2f}/"
            f"{o['health']['generator_lag_p99_ms']:.2f} ms (health), not counted in the latencies"
        )
        if "closed" in summary:
            line += (
                f"; offered = {100 * args.rate / summary['closed']['metrics']['rps']:.0f} % (metrics), "
                f"{100 * args.rate / summary['closed']['health']['rps']:.0f} % (health) of the "
                "closed-loop throughput"
            )
        print(line)
    if "closed" in summary:
        c = summary["closed"]
        print(
            f"closed loop: {args.concurrency} requests always in flight: latency ≈ {args.concurrency} / "
            "throughput "
            f"(Little's law: {1000 * args.concurrency / c['metrics']['rps']:.0f} ms for metrics, "
            f"{1000 * args.concurrency / c['health']['rps']:.0f} ms for health; measured means "
            f"{c['metrics']['mean_ms']:.0f} and {c['health']['mean_ms']:.0f} ms): it measures capacity, "
            "not the time a request takes"
        )
    print(
        "CPU ms/req: CPU time of the API server's processes (user + system, all workers) during that "
        "route's rounds, per request; PostgreSQL's part not included, the server's idle work included "
        "(it weighs more at a low rate)"
    )
    gen = summary.get("generator")
    if gen:
        print(
            f"load generator: {gen['cpu_seconds']:.1f} s of CPU in {gen['seconds']:.0f} s "
            f"({100 * gen['cpu_seconds'] / gen['seconds']:.0f} % of one CPU, taken from the server's machine)"
        )
    if TARGET_PHASE not in summary:
        print(f"targets not checked: the {PHASE_TITLES[TARGET_PHASE]} phase was not run")
        return False
    v = verdicts(summary)
    print(
        f"targets, checked on the {PHASE_TITLES[TARGET_PHASE]} phase at {args.rate:g} req/s "
        "(a latency target needs a load below capacity; see the docstring):"
    )
    print(
        f"  p99(metrics) ≤ {P99_TARGET_MS:g} ms:            {v['p99_ms']:.1f} ms → "
        f"{'MET' if v['p99_met'] else 'MISSED'}"
    )
    print(
        f"  p99(metrics) / p99(health) ≤ {RATIO_TARGET}: {v['ratio']:.2f} → "
        f"{'MET' if v['ratio_met'] else 'MISSED'}"
    )
    if "closed" in summary:
        c = summary["closed"]
        print(
            f"  (closed loop, not a target: p99 {c['metrics']['p99_ms']:.0f} ms, ratio p99 "
            f"{c['ratios']['p99']:.2f}, throughput ratio {c['ratios']['rps']:.2f})"
        )
    print(f"every answer 200 (and metrics success true): {'yes' if v['errors_met'] else 'NO'}")
    return v["p99_met"] and v["ratio_met"] and v["errors_met"]
