#!/usr/bin/env bash
# The entrypoint of the Airflow containers of docker-compose.yaml (under dumb-init, before the image's
# /entrypoint; airflow-init reads the same values with --print). Two things compose cannot compute:
#
# 1. Airflow's task slots, sized to the machine the container runs on (docs/compose.md, "Sizing"):
#
#   AIRFLOW__CELERY__WORKER_CONCURRENCY = min(2 x CPUs, memory / AIRFLOW_SIZING_TASK_MEMORY_MB), >= 1
#       task processes per Celery worker: two per CPU (a task waits on PostgreSQL part of the time),
#       fewer when memory would not hold them (a running weekly task peaks at ~325 MiB; default 400 MB
#       per slot);
#   AIRFLOW__CORE__PARALLELISM = worker concurrency x AIRFLOW_WORKER_REPLICAS (default 1)
#       the task instances the scheduler runs at once over all workers: what the workers can take,
#       not Airflow's default 32.
#
#    A value set in .env (non-empty) wins and is only checked. CPUs: nproc, capped by the container's
#    CPU quota (cgroup v2 cpu.max, `docker run --cpus`); memory: MemTotal, capped by the container's
#    memory limit (memory.max). AIRFLOW_SIZING_CPUS / AIRFLOW_SIZING_MEMORY_MB replace what is
#    measured (the tests use them).
# 2. INVESTOR_ARCHIVE_DIR and INVESTOR_STAGING_DIR as the container sees them: a URL (s3://...) as it
#    is; a relative path (.env is shared with `make demo`, whose paths are relative to the project
#    folder) under /opt/airflow, the project folder in the image (docs/investors: the bind mount);
#    an absolute path as it is (a path inside the container).
#
# 3. The passwords of .env that no Airflow process needs are dropped from the environment.
#
# `airflow-entrypoint.sh --print` prints the resulting variables (shell-quoted) instead of running.
set -euo pipefail

fail() { echo "airflow-entrypoint: $*" >&2; exit 2; }
whole() {  # whole NAME VALUE: VALUE must be a whole number >= 1
  [[ "$2" =~ ^[0-9]+$ ]] && (( 10#$2 >= 1 )) || fail "$1 must be a whole number >= 1, got '$2'"
}
cgroup_root="${AIRFLOW_SIZING_CGROUP_ROOT:-/sys/fs/cgroup}"

host_cpus() {
  if [[ -n "${AIRFLOW_SIZING_CPUS:-}" ]]; then
    whole AIRFLOW_SIZING_CPUS "${AIRFLOW_SIZING_CPUS}"; echo $(( 10#${AIRFLOW_SIZING_CPUS} )); return
  fi
  local cpus quota period
  cpus=$(nproc)
  if [[ -r "${cgroup_root}/cpu.max" ]]; then
    read -r quota period < "${cgroup_root}/cpu.max"
    if [[ "${quota}" =~ ^[0-9]+$ && "${period}" =~ ^[0-9]+$ ]] && (( period > 0 )); then
      quota=$(( (quota + period - 1) / period ))  # --cpus 1.5 -> 2
      (( quota >= 1 && quota < cpus )) && cpus=${quota}
    fi
  fi
  echo "${cpus}"
}

host_memory_mb() {
  if [[ -n "${AIRFLOW_SIZING_MEMORY_MB:-}" ]]; then
    whole AIRFLOW_SIZING_MEMORY_MB "${AIRFLOW_SIZING_MEMORY_MB}"; echo $(( 10#${AIRFLOW_SIZING_MEMORY_MB} )); return
  fi
  local mb limit
  mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
  if [[ -r "${cgroup_root}/memory.max" ]]; then
    read -r limit < "${cgroup_root}/memory.max"
    if [[ "${limit}" =~ ^[0-9]+$ ]] && (( limit / 1048576 < mb )); then
      mb=$(( limit / 1048576 ))
    fi
  fi
  echo "${mb}"
}

task_mb="${AIRFLOW_SIZING_TASK_MEMORY_MB:-400}"
whole AIRFLOW_SIZING_TASK_MEMORY_MB "${task_mb}"
replicas="${AIRFLOW_WORKER_REPLICAS:-1}"
whole AIRFLOW_WORKER_REPLICAS "${replicas}"

cpus=$(host_cpus)
memory_mb=$(host_memory_mb)
if [[ -n "${AIRFLOW__CELERY__WORKER_CONCURRENCY:-}" ]]; then
  whole AIRFLOW__CELERY__WORKER_CONCURRENCY "${AIRFLOW__CELERY__WORKER_CONCURRENCY}"
  concurrency_from=".env"
else
  by_cpu=$(( 2 * cpus ))
  by_memory=$(( memory_mb / 10#${task_mb} ))
  concurrency=$(( by_cpu < by_memory ? by_cpu : by_memory ))
  (( concurrency >= 1 )) || concurrency=1
  export AIRFLOW__CELERY__WORKER_CONCURRENCY="${concurrency}"
  concurrency_from="min(2 x ${cpus} CPUs, ${memory_mb} MB / ${task_mb} MB)"
fi
if [[ -n "${AIRFLOW__CORE__PARALLELISM:-}" ]]; then
  whole AIRFLOW__CORE__PARALLELISM "${AIRFLOW__CORE__PARALLELISM}"
  parallelism_from=".env"
else
  export AIRFLOW__CORE__PARALLELISM=$(( AIRFLOW__CELERY__WORKER_CONCURRENCY * 10#${replicas} ))
  parallelism_from="${AIRFLOW__CELERY__WORKER_CONCURRENCY} x ${replicas} worker(s)"
fi

project_dir=/opt/airflow
container_path() {  # container_path VALUE DEFAULT
  local value="${1:-}"
  value="${value#"${value%%[![:space:]]*}"}"; value="${value%"${value##*[![:space:]]}"}"
  if [[ -z "${value}" ]]; then echo "$2"
  elif [[ "${value}" == *://* || "${value}" == /* ]]; then echo "${value}"
  else value="${value#./}"; echo "${project_dir}/${value%/}"
  fi
}
export INVESTOR_ARCHIVE_DIR INVESTOR_STAGING_DIR
INVESTOR_ARCHIVE_DIR=$(container_path "${INVESTOR_ARCHIVE_DIR:-}" "${project_dir}/docs/investors")
INVESTOR_STAGING_DIR=$(container_path "${INVESTOR_STAGING_DIR:-}" "${project_dir}/staging")

if [[ "${1:-}" == "--print" ]]; then
  for name in AIRFLOW__CELERY__WORKER_CONCURRENCY AIRFLOW__CORE__PARALLELISM INVESTOR_ARCHIVE_DIR \
              INVESTOR_STAGING_DIR; do
    printf '%s=%q\n' "${name}" "${!name}"
  done
  exit 0
fi
echo "airflow-entrypoint: archive ${INVESTOR_ARCHIVE_DIR}, staging ${INVESTOR_STAGING_DIR};" \
     "worker_concurrency=${AIRFLOW__CELERY__WORKER_CONCURRENCY} (${concurrency_from})," \
     "parallelism=${AIRFLOW__CORE__PARALLELISM} (${parallelism_from})" >&2
# .env reaches every container (env_file): drop the passwords no Airflow process needs (each one is
# already inside the URL or connection that uses it, or belongs to another service or to airflow-init)
unset POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD METRICS_DB_PASSWORD SOURCE_OWNER_PASSWORD SOURCE_READER_PASSWORD \
      MINIO_ROOT_PASSWORD INVESTOR_S3_SECRET_KEY _AIRFLOW_WWW_USER_PASSWORD _AIRFLOW_VIEWER_PASSWORD \
      _AIRFLOW_OPERATOR_PASSWORD
# the image's entrypoint (AIRFLOW_IMAGE_ENTRYPOINT: another program, for the tests)
exec "${AIRFLOW_IMAGE_ENTRYPOINT:-/entrypoint}" "$@"
