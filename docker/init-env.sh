#!/usr/bin/env bash
# Prepare .env for `docker compose up` (run from the project root: ./docker/init-env.sh).
#
# - No .env yet: copied from .env.example, with the SMTP port and STARTTLS left empty when no
#   SMTP_SERVER is set, so that the stack's mail catcher (mailpit:1025, no TLS) is used.
# - Adds what docker-compose.yaml requires and .env lacks, never changing a value already there:
#   AIRFLOW_UID (your uid, so the archive in docs/investors is yours), the Fernet key and the JWT
#   secret shared by every Airflow container, and the UI password of the admin user.
# Secrets come from /dev/urandom; .env is git-ignored and made readable by you only.
set -euo pipefail
cd "$(dirname "$0")/.."

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
add _AIRFLOW_WWW_USER_USERNAME admin
add _AIRFLOW_WWW_USER_PASSWORD "$(random_b64 12 | tr -d '=')"
echo "UI login: $(grep -E '^_AIRFLOW_WWW_USER_USERNAME=' .env | cut -d= -f2-) / $(grep -E '^_AIRFLOW_WWW_USER_PASSWORD=' .env | cut -d= -f2-)"
