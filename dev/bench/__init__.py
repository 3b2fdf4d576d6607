"""The benchmarks of ``make bench`` (docs/benchmarks.md): weekly run, scheduler, backfill, API."""
