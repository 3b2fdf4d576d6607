"""The investor API (SPEC section 11): a FastAPI app that the plugin mounts in Airflow's API server.

``app`` assembles it; ``routes`` and ``page`` answer; ``auth`` checks Airflow's user and per-DAG
access; ``params`` parses the request parameters; ``queries`` reads the metrics store through the
connection ``pool``; ``collect`` queues a manual run. These two names are all the plugin imports
at parse time (nothing heavy is imported here).
"""

DAG_ID = "investor_metrics"  # the weekly DAG (dags/investor_metrics.py) the API reads and triggers
URL_PREFIX = "/api/investor"  # where the plugin mounts the API in the Airflow API server
