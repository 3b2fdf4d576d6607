#!/usr/bin/env bash
# The airflow-init service of docker-compose.yaml: runs once, as root, before the other Airflow
# services start (they wait for it to complete successfully). Like the official compose file's init,
# plus the project's steps:
#   1. warnings about AIRFLOW_UID and the machine's resources;
#   2. Airflow's metadata database migrated (the image's entrypoint, _AIRFLOW_DB_MIGRATE=true) and the
#      default airflow.cfg written to the shared config volume;
#   3. the UI/API user: the SimpleAuthManager's password file (user from _AIRFLOW_WWW_USER_USERNAME,
#      password from _AIRFLOW_WWW_USER_PASSWORD);
#   4. the ChatterFix demo data set, once (docker/seed_demo.py), unless LOAD_DEMO_DATA=false;
#   5. the shared folders handed to AIRFLOW_UID.
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

archive_dir="${INVESTOR_ARCHIVE_DIR:-/opt/airflow/docs/investors}"
staging_dir="${INVESTOR_STAGING_DIR:-/opt/airflow/staging}"
mkdir -p /opt/airflow/logs /opt/airflow/config "${staging_dir}"
[[ "${archive_dir}" == *://* ]] || mkdir -p "${archive_dir}"

echo "Airflow version (the entrypoint waits for PostgreSQL and migrates the metadata database first):"
/entrypoint airflow version
airflow config list >/dev/null  # writes the default airflow.cfg to the shared config volume

passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
python - "${passwords}" <<'PY'
import json, os, sys

path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as fh:
    json.dump({os.environ["_AIRFLOW_WWW_USER_USERNAME"]: os.environ["_AIRFLOW_WWW_USER_PASSWORD"]}, fh)
print(f"UI/API user {os.environ['_AIRFLOW_WWW_USER_USERNAME']!r}: password from _AIRFLOW_WWW_USER_PASSWORD")
PY

if [[ "${LOAD_DEMO_DATA:-true}" == "true" ]]; then
  python /opt/airflow/docker/seed_demo.py
else
  echo "LOAD_DEMO_DATA=${LOAD_DEMO_DATA}: no demo data loaded (the source is ${DB_HOST:-?}/${DB_NAME:-?})"
fi

chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs /opt/airflow/config "${staging_dir}"
# Only the archive folder itself: its files are written atomically (a rename inside the folder).
[[ "${archive_dir}" == *://* ]] || chown "${AIRFLOW_UID}:0" "${archive_dir}"
echo "airflow-init done"
