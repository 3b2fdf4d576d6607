#!/usr/bin/env bash
# Prepare .env for `docker compose up` (run from the project root: ./docker/init-env.sh).
#
# - No .env yet: copied from .env.example, with the SMTP port and STARTTLS left empty when no
#   SMTP_SERVER is set, so that the stack's mail catcher (mailpit:1025, no TLS) is used.
# - Adds what docker-compose.yaml requires and .env lacks, never changing a value already there:
#   AIRFLOW_UID (your uid, so the archive in docs/investors is yours), the Fernet key, the JWT
#   secret and the API's session key shared by every Airflow container, the UI password of the
#   admin user, and the passwords of the database roles (docker/postgres/10-databases-and-roles.sh).
# - With --s3: the settings of the s3 profile (MinIO's admin password, the bucket, the pipeline's
#   access key, the aws_default connection to MinIO) and INVESTOR_ARCHIVE_DIR / INVESTOR_STAGING_DIR
#   set to s3:// URLs of that bucket (a local path there is replaced; s3:// URLs are kept).
# Secrets come from /dev/urandom (URL-safe characters); .env is git-ignored and readable by you only.
set -euo pipefail
cd "$(dirname "$0")/.."
with_s3=false
case "${1:-}" in
  "") ;;
  --s3) with_s3=true ;;
  *) echo "usage: $0 [--s3]" >&2; exit 2 ;;
esac

if [[ ! -f .env ]]; then
  cp .env.example .env
  if grep -qE '^SMTP_SERVER=$' .env; then
    sed -i.bak -E 's/^SMTP_PORT=.*/SMTP_PORT=/; s/^SMTP_STARTTLS=.*/SMTP_STARTTLS=/' .env && rm -f .env.bak
  fi
  echo "created .env from .env.example"
fi
chmod 600 .env

has() { grep -qE "^$1=.+" .env; }
random_b64() { head -c "$1" /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_'; }
# letters and digits only: safe in a URL, in a connection's JSON, and as a command's argument
random_password() { random_b64 "$1" | tr -d '=' | tr -- '-_' 'xy'; }
add() {
  if has "$1"; then
    echo "kept $1"
  else
    sed -i.bak -E "/^$1=\$/d" .env && rm -f .env.bak
    printf '%s=%s\n' "$1" "$2" >> .env
    echo "added $1"
  fi
}

grep -q '^# docker compose' .env || printf '\n# docker compose (docker-compose.yaml): one Fernet key and one JWT secret for every container\n' >> .env
add AIRFLOW_UID "$(id -u)"
add AIRFLOW__CORE__FERNET_KEY "$(random_b64 32)"
add AIRFLOW__API_AUTH__JWT_SECRET "$(random_b64 48 | tr -d '=')"
add AIRFLOW__API__SECRET_KEY "$(random_b64 32 | tr -d '=')"
add _AIRFLOW_WWW_USER_USERNAME admin
add _AIRFLOW_WWW_USER_PASSWORD "$(random_b64 12 | tr -d '=')"
# the database roles: the superuser, Airflow's metadata, the metrics store, the demo source's owner
# and the pipeline's read-only role on the source
for role_password in POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD METRICS_DB_PASSWORD SOURCE_OWNER_PASSWORD \
                     SOURCE_READER_PASSWORD; do
  add "${role_password}" "$(random_password 24)"
done

value() { grep -E "^$1=" .env | tail -n 1 | cut -d= -f2-; }
if [[ "${with_s3}" == true ]]; then
  add MINIO_ROOT_USER minio-admin
  add MINIO_ROOT_PASSWORD "$(random_password 24)"
  add INVESTOR_S3_BUCKET investor-metrics
  add INVESTOR_S3_ACCESS_KEY investor-metrics-pipeline
  add INVESTOR_S3_SECRET_KEY "$(random_password 30)"
  bucket="$(value INVESTOR_S3_BUCKET)"
  for setting in INVESTOR_ARCHIVE_DIR:archive INVESTOR_STAGING_DIR:staging; do
    name="${setting%%:*}"
    if [[ "$(value "${name}")" == s3://* ]]; then
      echo "kept ${name}"
    else
      sed -i.bak -E "/^${name}=/d" .env && rm -f .env.bak
      printf '%s=%s\n' "${name}" "s3://${bucket}/${setting#*:}" >> .env
      echo "set ${name}=s3://${bucket}/${setting#*:}"
    fi
  done
  connection=$(printf '{"conn_type":"aws","login":"%s","password":"%s","extra":{"endpoint_url":"http://minio:9000","region_name":"us-east-1"}}' \
    "$(value INVESTOR_S3_ACCESS_KEY)" "$(value INVESTOR_S3_SECRET_KEY)")
  add AIRFLOW_CONN_AWS_DEFAULT "'${connection}'"
  echo "s3 profile: docker compose --profile s3 up -d (bucket ${bucket})"
fi
echo "UI login: $(grep -E '^_AIRFLOW_WWW_USER_USERNAME=' .env | cut -d= -f2-) / $(grep -E '^_AIRFLOW_WWW_USER_PASSWORD=' .env | cut -d= -f2-)"
