"""The performance benchmark of the weekly ``investor_metrics`` DAG (``make bench``): ``cli`` runs
it, ``floor`` measures the data floor, ``workspace`` runs the children that ``children`` holds,
``report`` prints the figures (docs/benchmarks.md)."""
