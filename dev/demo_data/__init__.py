"""The synthetic ChatterFix data set the demo, the tests and the benchmarks load."""
