#!/usr/bin/env bash
# PostgreSQL of docker-compose.yaml, first start only (/docker-entrypoint-initdb.d): next to Airflow's
# metadata database ($POSTGRES_DB), the databases named in $EXTRA_DATABASES — the ChatterFix demo
# source and the investor-metrics store — owned by $POSTGRES_USER.
set -euo pipefail

for db in ${EXTRA_DATABASES:-}; do
  echo "creating database ${db}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    --set db="${db}" --set owner="${POSTGRES_USER}" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
done
