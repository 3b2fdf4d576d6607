"""Files in a local folder or an object store, one way for the archive and the staging area
(SPEC 7, 13).

A location is what ``settings.archive_dir()`` / ``settings.staging_dir()`` return: an absolute local
path, or an object-store URL already checked there (atomic replace, provider installed, no password).
Object stores go through Airflow's ``ObjectStoragePath``, so endpoint, credentials and region come the
Airflow way: from the connection named in the URL (``s3://<conn id>@bucket/prefix``), else
``INVESTOR_STORAGE_CONN_ID``, else the provider's default (``aws_default``). For an S3-compatible
server (MinIO, Ceph, moto) that connection's extra holds ``endpoint_url``.

Writes are whole or absent: on a local disk a temporary file in the same folder is renamed over the
target (``os.replace``); on an object store one PUT (a multipart upload above s3fs' block size, which
S3 also makes visible only once completed) replaces the object. Objects get no public ACL, so they
are as private as the bucket; local files are created ``mode`` (0640 by default).
"""

from __future__ import annotations

import os
import posixpath
import secrets
from urllib.parse import urlsplit

from include.investor_metrics.settings import LOCAL_PROTOCOLS, storage_conn_id

FILE_MODE = 0o640


def is_local(location: str) -> bool:
    return "://" not in location or urlsplit(location).scheme.lower() in LOCAL_PROTOCOLS


def local_path(location: str) -> str:
    """The local path of a local ``location`` (a path or a ``file://`` URL)."""
    return urlsplit(location).path if "://" in location else location


def join(location: str, *parts: str) -> str:
    """``location`` / ``parts`` ("/" for URLs, the OS's separator for local paths)."""
    if is_local(location):
        return os.path.join(local_path(location), *parts)
    return posixpath.join(location.rstrip("/"), *parts)


def parent(location: str) -> str:
    """The folder of the file ``location``."""
    if is_local(location):
        return os.path.dirname(local_path(location))
    return location.rstrip("/").rsplit("/", 1)[0]


def storage_path(location: str):
    """An ``ObjectStoragePath`` of ``location`` with its Airflow connection."""
    from airflow.sdk import ObjectStoragePath

    if is_local(location):
        return ObjectStoragePath("file://" + os.path.abspath(local_path(location)))
    parts = urlsplit(location)
    if parts.username:  # s3://<conn id>@bucket/prefix: ObjectStoragePath reads the connection itself
        return ObjectStoragePath(location)
    return ObjectStoragePath(location, conn_id=storage_conn_id(parts.scheme.lower()))


def filesystem(location: str):
    """``(fsspec file system, root path in it)`` of ``location``."""
    if is_local(location):
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), os.path.abspath(local_path(location)).rstrip("/")
    path = storage_path(location)
    return path.fs, path.path.rstrip("/")


def write_bytes_atomic(location: str, payload: bytes, *, mode: int = FILE_MODE) -> str:
    """Write ``payload`` to the file ``location`` so that a reader sees the whole old content or the
    whole new one, never a part (and a crash leaves the old one)."""
    if is_local(location):
        path = local_path(location)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            os.fchmod(fd, mode)  # whatever the umask
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path
    fs, path = filesystem(location)
    fs.pipe_file(path, payload)  # one PUT: the object appears whole
    return location


def read_bytes(location: str) -> bytes | None:
    """The content of the file ``location``, or ``None`` when there is none."""
    if is_local(location):
        try:
            with open(local_path(location), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
    fs, path = filesystem(location)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None
