"""A real S3-protocol server on loopback for the object-storage tests: moto's server mode
(``python -m moto.server``), started as a process of its own on 127.0.0.1 and stopped by PID.

The pipeline reaches it the Airflow way: an ``aws_default`` connection (``AIRFLOW_CONN_AWS_DEFAULT``)
whose extra holds the ``endpoint_url``, as for any S3-compatible server (MinIO, Ceph). The access
key and secret are made up per server (moto accepts any), and the secret is what the tests look for
in logs and files: it must appear nowhere.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)

    def connection_json(self) -> str:
        """``AIRFLOW_CONN_AWS_DEFAULT`` for this server."""
        return json.dumps({"conn_type": "aws", "login": self.access_key, "password": self.secret_key,
                           "extra": {"endpoint_url": self.endpoint, "region_name": REGION}})

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=REGION)

    def new_bucket(self, prefix: str = "cfx") -> str:
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` (its key relative to the prefix) with its content."""
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"][len(prefix):].lstrip("/")] = body
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_s3_server(log_path: Path | None = None, timeout: float = 60) -> S3Server:
    port = free_port()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    server = S3Server(f"http://127.0.0.1:{port}", "AKIACFXTEST" + secrets.token_hex(4).upper(),
                      "cfx-s3-secret-" + secrets.token_urlsafe(16), process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the moto S3 server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(server.endpoint + "/moto-api/", timeout=2):  # noqa: S310
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"the moto S3 server did not answer on {server.endpoint}") from None
            time.sleep(0.2)


class Files:
    """What a local folder or an ``s3://bucket/prefix`` location holds, read without the project's
    code (``pathlib`` or boto3), so a test compares the pipeline's files with what is really there."""

    def __init__(self, location: str, server: S3Server | None = None):
        self.location = location.rstrip("/")
        self.server = server
        if location.startswith("s3://"):
            bucket, _, prefix = location[len("s3://"):].partition("/")
            self.bucket, self.prefix = bucket, prefix.strip("/")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def is_s3(self) -> bool:
        return self.server is not None

    def files(self, suffix: str = ".json", skip: str = "data_quality") -> dict[str, bytes]:
        """``{relative name: content}`` of every file ending ``suffix`` (none under ``skip``)."""
        if self.is_s3():
            found = self.server.objects(self.bucket, self.prefix)
        else:
            root = Path(self.location)
            found = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return {name: body for name, body in sorted(found.items())
                if name.endswith(suffix) and skip not in name.split("/")}

    def read_bytes(self, name: str) -> bytes | None:
        if self.is_s3():
            client = self.server.client()
            try:
                return client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
            except client.exceptions.NoSuchKey:
                return None
        path = Path(self.location) / name
        return path.read_bytes() if path.exists() else None

    def read(self, name: str):
        body = self.read_bytes(name)
        return None if body is None else json.loads(body)

    def remove(self, name: str) -> None:
        """Delete the file ``name``, or everything below the folder ``name``."""
        if self.is_s3():
            client = self.server.client()
            for key in list(self.server.objects(self.bucket, self._key(name))):
                client.delete_object(Bucket=self.bucket, Key=self._key(f"{name}/{key}" if key else name))
            return
        import shutil

        path = Path(self.location) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
