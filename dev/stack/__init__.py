"""The local stack of ``make demo``: embedded PostgreSQL, SMTP sink, Airflow processes and client."""
