"""What does not run in production: the local demo stack (``dev.stack``), the synthetic data set
(``dev.demo_data``) and the benchmarks (``dev.bench``). Not in the runtime image; ``include`` never
imports it."""
