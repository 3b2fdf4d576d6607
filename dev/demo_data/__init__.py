"""The synthetic ChatterFix data set the demo, the tests and the benchmarks load.

``params`` (what the rows depend on, the shared random streams), one module per table family
(``customers``, ``subscriptions``, ``leads``, ``events``: usage and NPS, ``ai_requests``,
``health``: health checks), ``columns`` (rows as binary COPY), ``dataset`` (every chunk, no
database), ``loader`` (into PostgreSQL, unless already loaded), ``generator`` (the command line).
"""
