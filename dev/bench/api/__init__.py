"""Latency of the investor API under load (``make bench BENCH_ARGS="--api"``,
``python -m dev.bench.api``): ``cli`` runs it, ``data`` publishes the snapshots it serves, ``load``
is the load generator's process, ``report`` the table and the verdicts (docs/benchmarks.md)."""
