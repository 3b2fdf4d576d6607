#!/usr/bin/env bash
# The airflow-init service of docker-compose.yaml: runs once, as root, before the other Airflow
# services start (they wait for it to complete successfully). Like the official compose file's init,
# plus the project's steps:
#   1. warnings about AIRFLOW_UID and the machine's resources;
#   2. Airflow's metadata database migrated (the image's entrypoint, _AIRFLOW_DB_MIGRATE=true) and the
#      default airflow.cfg written to the shared config volume;
#   3. the FAB auth manager's users (docker/create_users.py): the admin (_AIRFLOW_WWW_USER_USERNAME,
#      _AIRFLOW_WWW_USER_PASSWORD), and a viewer and an operator when .env gives their passwords;
#   4. the ChatterFix demo data set, once (docker/seed_demo.py), unless LOAD_DEMO_DATA=false: written
#      with the demo source's owner role (SOURCE_OWNER_USER / SOURCE_OWNER_PASSWORD) when the source
#      is this stack's PostgreSQL; the pipeline itself reads it with the read-only role (DB_USER);
#   5. the shared folders handed to AIRFLOW_UID.
# Also the pool chatterfix_source (INVESTOR_SOURCE_POOL_SLOTS, 4), after the users.
# The archive and staging paths are the ones every Airflow container resolves
# (docker/airflow-entrypoint.sh --print).
set -euo pipefail

warn() { echo -e "\033[1;33mWARNING: $*\033[0m"; }

if [[ -z "${AIRFLOW_UID:-}" ]]; then
  warn "AIRFLOW_UID is not set: the containers run as uid 50000. On Linux put AIRFLOW_UID=\$(id -u) in .env" \
       "(docker/init-env.sh does) so that the archive in docs/investors belongs to you."
  AIRFLOW_UID=50000
fi
one_meg=1048576
mem_available=$(( $(getconf _PHYS_PAGES) * $(getconf PAGE_SIZE) / one_meg ))
cpus_available=$(grep -cE 'cpu[0-9]+' /proc/stat)
if (( mem_available < 4000 )); then
  warn "at least 4 GB of memory are needed for Airflow; Docker has $(numfmt --to iec $(( mem_available * one_meg )))"
fi
if (( cpus_available < 2 )); then
  warn "at least 2 CPUs are recommended; Docker has ${cpus_available}"
fi

eval "$(/opt/airflow/docker/airflow-entrypoint.sh --print)"
archive_dir="${INVESTOR_ARCHIVE_DIR}"
staging_dir="${INVESTOR_STAGING_DIR}"
echo "task slots: worker_concurrency=${AIRFLOW__CELERY__WORKER_CONCURRENCY}, parallelism=${AIRFLOW__CORE__PARALLELISM}"
mkdir -p /opt/airflow/logs /opt/airflow/config
for dir in "${archive_dir}" "${staging_dir}"; do
  [[ "${dir}" == *://* ]] || mkdir -p "${dir}"
done

echo "Airflow version (the entrypoint waits for PostgreSQL and migrates the metadata database first):"
/entrypoint airflow version
airflow config list >/dev/null  # writes the default airflow.cfg to the shared config volume

python /opt/airflow/docker/create_users.py
# the pool that caps the queries on the ChatterFix source (SPEC 13; docs/configuration.md)
airflow pools set chatterfix_source "${INVESTOR_SOURCE_POOL_SLOTS:-4}" \
  "ChatterFix source database: concurrent queries of investor_metrics (SPEC 13)"

if [[ "${LOAD_DEMO_DATA:-true}" == "true" ]]; then
  if [[ "${DB_HOST:-postgres}" == "postgres" && -n "${SOURCE_OWNER_PASSWORD:-}" ]]; then
    # the demo source of this stack's PostgreSQL: its owner writes it (the reader cannot)
    DB_USER="${SOURCE_OWNER_USER:-chatterfix_owner}" DB_PASSWORD="${SOURCE_OWNER_PASSWORD}" \
      python /opt/airflow/docker/seed_demo.py
  else
    python /opt/airflow/docker/seed_demo.py
  fi
else
  echo "LOAD_DEMO_DATA=${LOAD_DEMO_DATA}: no demo data loaded (the source is ${DB_HOST:-?}/${DB_NAME:-?})"
fi

chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs /opt/airflow/config
[[ "${staging_dir}" == *://* ]] || chown -R "${AIRFLOW_UID}:0" "${staging_dir}"
# Only the archive folder itself: its files are written atomically (a rename inside the folder).
[[ "${archive_dir}" == *://* ]] || chown "${AIRFLOW_UID}:0" "${archive_dir}"
echo "airflow-init done"
