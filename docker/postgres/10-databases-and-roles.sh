#!/usr/bin/env bash
# PostgreSQL of docker-compose.yaml, first start only (/docker-entrypoint-initdb.d, as $POSTGRES_USER,
# the cluster's superuser): one login role per job, each owning only what it writes, and three
# databases that nothing else may connect to (docs/compose.md, "Database roles").
#
#   role (default name)        database (default name)      may
#   AIRFLOW_DB_USER (airflow)  AIRFLOW_DB_NAME (airflow)    own Airflow's metadata and the Celery results
#   METRICS_DB_USER            METRICS_DB_NAME              own the metrics store (its schema, the
#     (investor_metrics_owner)   (investor_metrics)           pipeline's and the health probe's writes)
#   SOURCE_OWNER_USER          SOURCE_DB_NAME               own the demo ChatterFix source (only the
#     (chatterfix_owner)         (chatterfix_cmms)            demo-data loader of airflow-init uses it)
#   SOURCE_READER_USER         SOURCE_DB_NAME               CONNECT, USAGE and SELECT on every table of
#     (chatterfix_reader)                                     the source, present and future: the pipeline
#
# Each role's password is its *_PASSWORD variable (.env, docker/init-env.sh generates them). The
# reader also gets default_transaction_read_only, a second lock beside the missing privileges.
# Run again (the tests do), it creates what is missing and sets the passwords and grants again.
set -euo pipefail

: "${AIRFLOW_DB_NAME:=airflow}" "${AIRFLOW_DB_USER:=airflow}"
: "${METRICS_DB_NAME:=investor_metrics}" "${METRICS_DB_USER:=investor_metrics_owner}"
: "${SOURCE_DB_NAME:=chatterfix_cmms}" "${SOURCE_OWNER_USER:=chatterfix_owner}"
: "${SOURCE_READER_USER:=chatterfix_reader}"
for password in AIRFLOW_DB_PASSWORD METRICS_DB_PASSWORD SOURCE_OWNER_PASSWORD SOURCE_READER_PASSWORD; do
  if [[ -z "${!password:-}" ]]; then
    echo "${password} is not set: every database role needs a password (./docker/init-env.sh writes them to .env)" >&2
    exit 1
  fi
done

# psql variables (:'x' a literal, :"x" an identifier) quote every name and password.
run_sql() {  # run_sql DATABASE: the SQL of stdin, as the superuser, stopping at the first error
  psql -v ON_ERROR_STOP=1 --quiet --no-psqlrc --username "${POSTGRES_USER}" --dbname "$1" \
    --set airflow_db="${AIRFLOW_DB_NAME}" --set airflow_user="${AIRFLOW_DB_USER}" \
    --set airflow_password="${AIRFLOW_DB_PASSWORD}" \
    --set metrics_db="${METRICS_DB_NAME}" --set metrics_user="${METRICS_DB_USER}" \
    --set metrics_password="${METRICS_DB_PASSWORD}" \
    --set source_db="${SOURCE_DB_NAME}" --set owner_user="${SOURCE_OWNER_USER}" \
    --set owner_password="${SOURCE_OWNER_PASSWORD}" \
    --set reader_user="${SOURCE_READER_USER}" --set reader_password="${SOURCE_READER_PASSWORD}"
}

echo "database roles: ${AIRFLOW_DB_USER}, ${METRICS_DB_USER}, ${SOURCE_OWNER_USER}, ${SOURCE_READER_USER}"
run_sql "${POSTGRES_DB}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', name)
  FROM unnest(ARRAY[:'airflow_user', :'metrics_user', :'owner_user', :'reader_user']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)\gexec
-- never superusers, never able to create roles or databases (ALTER also resets a role made earlier)
ALTER ROLE :"airflow_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'airflow_password';
ALTER ROLE :"metrics_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'metrics_password';
ALTER ROLE :"owner_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_password';
ALTER ROLE :"reader_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'reader_password';
ALTER ROLE :"reader_user" SET default_transaction_read_only = on;

SELECT format('CREATE DATABASE %I OWNER %I', db, owner)
  FROM (VALUES (:'airflow_db', :'airflow_user'), (:'metrics_db', :'metrics_user'),
               (:'source_db', :'owner_user')) AS wanted (db, owner)
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db)\gexec
ALTER DATABASE :"airflow_db" OWNER TO :"airflow_user";
ALTER DATABASE :"metrics_db" OWNER TO :"metrics_user";
ALTER DATABASE :"source_db" OWNER TO :"owner_user";
-- only each database's own roles connect (PUBLIC may connect to a new database by default)
REVOKE ALL ON DATABASE :"airflow_db", :"metrics_db", :"source_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"airflow_db" TO :"airflow_user";
GRANT CONNECT, TEMPORARY ON DATABASE :"metrics_db" TO :"metrics_user";
GRANT CONNECT, TEMPORARY ON DATABASE :"source_db" TO :"owner_user";
GRANT CONNECT ON DATABASE :"source_db" TO :"reader_user";
SQL

# Inside each database: its owner owns the public schema (PostgreSQL < 15 lets PUBLIC create there).
for db in "${AIRFLOW_DB_NAME}" "${METRICS_DB_NAME}"; do
  run_sql "${db}" <<'SQL'
SELECT format('ALTER SCHEMA public OWNER TO %s', d.datdba::regrole)
  FROM pg_database d WHERE d.datname = current_database()\gexec
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
done

# The source: the reader may read every table there is and every table the owner creates later
# (the demo loader creates them after this script), in any schema, and nothing else.
run_sql "${SOURCE_DB_NAME}" <<'SQL'
ALTER SCHEMA public OWNER TO :"owner_user";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"reader_user";
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'reader_user')
  FROM pg_namespace WHERE nspowner = :'owner_user'::regrole\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'reader_user')
  FROM pg_namespace WHERE nspowner = :'owner_user'::regrole\gexec
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" GRANT USAGE ON SCHEMAS TO :"reader_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_user" GRANT SELECT ON TABLES TO :"reader_user";
SQL
echo "databases ${AIRFLOW_DB_NAME}, ${METRICS_DB_NAME}, ${SOURCE_DB_NAME}: ready"
