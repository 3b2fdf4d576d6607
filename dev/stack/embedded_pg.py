"""An embedded PostgreSQL for machines that have none: the server binaries shipped in the
``pgserver`` wheel, run with ``pg_ctl`` on 127.0.0.1:<port>, data in a project-local folder.

No Docker, no system packages. Trust authentication on loopback only (a local demo/test server).
When run as root, PostgreSQL refuses to start, so the server runs as an unprivileged system user
(``pgserver``, created if missing, as the pgserver package itself does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

DEFAULT_PORT = 55432


def _pgserver():
    """Import pgserver quietly (it warns about XDG_RUNTIME_DIR at import; we do not use that dir)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver._commands
        import pgserver.utils
    return pgserver


def _bin(name: str) -> str:
    _pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    _pgserver()
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _prepare_permissions(datadir: Path, user: str | None) -> None:
    if user is None:
        return
    import pwd
    import stat

    _pgserver()
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(datadir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read_perm = stat.S_IRGRP | stat.S_IROTH
    execute_perm = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, execute_perm | read_perm)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read_perm)
    pw = pwd.getpwnam(user)
    for path in [datadir, *datadir.rglob("*")]:
        os.chown(path, pw.pw_uid, pw.pw_gid)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_running(datadir: Path) -> bool:
    pidfile = Path(datadir) / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def server_pid(datadir: Path) -> int | None:
    pidfile = Path(datadir) / "postmaster.pid"
    if not is_running(datadir):
        return None
    return int(pidfile.read_text().splitlines()[0])


def start(datadir: Path | str, port: int = DEFAULT_PORT, timeout: float = 60) -> int:
    """Initialise (first time) and start the server; return its port. Safe to call again."""
    datadir = Path(datadir).resolve()
    user = _run_as_user()
    if is_running(datadir):
        return port
    if port_open("127.0.0.1", port):
        raise RuntimeError(
            f"port {port} on 127.0.0.1 is taken by another program; set EMBEDDED_PG_PORT to a free port"
        )
    datadir.mkdir(parents=True, exist_ok=True)
    _prepare_permissions(datadir, user)
    if not (datadir / "PG_VERSION").exists():
        subprocess.run(
            [_bin("initdb"), "-D", str(datadir), "--auth=trust", "--encoding=utf8", "-U", "postgres"],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    # Sockets go in the data folder (the default /var/run/postgresql may not exist or be writable).
    options = f"-h 127.0.0.1 -p {port} -k {datadir} -c max_connections=200 -c fsync=off"
    subprocess.run(
        [
            _bin("pg_ctl"),
            "-D",
            str(datadir),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            options,
            "-l",
            str(datadir / "server.log"),
            "start",
        ],
        check=True,
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # Own session: the server must outlive the command that started it (and its Ctrl-C).
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded PostgreSQL did not open port {port}; see {datadir / 'server.log'}")
        time.sleep(0.2)
    return port


def stop(datadir: Path | str, timeout: float = 60) -> bool:
    """Stop the server if it runs; return whether it was running."""
    datadir = Path(datadir).resolve()
    if not is_running(datadir):
        return False
    user = _run_as_user()
    if user is not None:
        # The server's user must reach the folder again (a parent may have been made private since).
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(datadir)
    result = subprocess.run(
        [_bin("pg_ctl"), "-D", str(datadir), "-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
        user=_run_as_user(),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and is_running(datadir):
        # "fast" waits for backends to finish aborting; if one hangs, be firmer.
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(datadir), "-w", "-t", str(int(timeout)), "-m", "immediate", "stop"],
            user=_run_as_user(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 and is_running(datadir):
            raise RuntimeError(
                f"could not stop the embedded PostgreSQL in {datadir}: {result.stderr.strip()}"
            )
    return True
