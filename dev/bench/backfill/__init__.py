"""Wall time of a backfill through the real scheduler against a no-op DAG of the same shape
(``make bench BENCH_ARGS="--backfill"``, ``python -m dev.bench.backfill``): ``cli`` runs it,
``floor`` builds the no-op DAG and its stack, ``measure`` times one backfill, ``report`` prints."""
