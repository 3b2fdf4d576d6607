"""The Airflow runtime helpers: the preloading executor and the Celery worker configuration."""
