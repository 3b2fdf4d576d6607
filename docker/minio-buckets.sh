#!/bin/sh
# The minio-buckets service of docker-compose.yaml (profile s3; the minio/mc image): once MinIO is
# healthy, the bucket INVESTOR_S3_BUCKET and the pipeline's access key INVESTOR_S3_ACCESS_KEY /
# INVESTOR_S3_SECRET_KEY, whose policy allows that bucket only (list it; read, write and delete its
# objects). Airflow reaches MinIO with that key through the connection aws_default
# (AIRFLOW_CONN_AWS_DEFAULT in .env, ./docker/init-env.sh --s3 writes it). Run again, it creates
# what is missing and sets the key's secret and policy again.
set -eu

for name in MINIO_ROOT_PASSWORD INVESTOR_S3_ACCESS_KEY INVESTOR_S3_SECRET_KEY; do
  eval "value=\${${name}:-}"
  if [ -z "${value}" ]; then
    echo "${name} is not set: the s3 profile needs it in .env (./docker/init-env.sh --s3 writes it)" >&2
    exit 2
  fi
done
bucket="${INVESTOR_S3_BUCKET:-investor-metrics}"
policy="${bucket}-readwrite"

mc alias set local http://minio:9000 "${MINIO_ROOT_USER:-minio-admin}" "${MINIO_ROOT_PASSWORD}" >/dev/null
mc mb --ignore-existing "local/${bucket}"
cat > /tmp/policy.json <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::${bucket}"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::${bucket}/*"]}
  ]
}
EOF
mc admin policy create local "${policy}" /tmp/policy.json
mc admin user add local "${INVESTOR_S3_ACCESS_KEY}" "${INVESTOR_S3_SECRET_KEY}"
if ! mc admin policy attach local "${policy}" --user "${INVESTOR_S3_ACCESS_KEY}" 2>/tmp/attach.err; then
  # attaching twice is refused; a policy already attached is what we want
  mc admin user info local "${INVESTOR_S3_ACCESS_KEY}" | grep -q "${policy}" || { cat /tmp/attach.err >&2; exit 1; }
fi
echo "bucket ${bucket}: ready; access key ${INVESTOR_S3_ACCESS_KEY} may use it (policy ${policy})"
