"""A local Slack incoming-webhook sink (``http.server`` on 127.0.0.1) that keeps every posted
message as a ``.json`` file, as the SMTP sink keeps the e-mails.

The demo points the connection ``slack_investor_updates`` at it (``webhook_url``), and the tests use
it as the real HTTP peer of the Slack provider. Each POST is answered as Slack does (200, ``ok``)
and written atomically as ``<UTC time>-<sequence>.json`` (``{"received_at", "path", "payload"}``),
so a listing is in arrival order; a body that is not JSON is answered 400 ``invalid_payload`` and
kept nowhere. ``answers``: HTTP statuses to give the next POSTs instead of 200 (tests: a 500 once),
recorded but not kept as messages.

Command line: ``python -m dev.stack.slack_sink --folder .local/slack --port 8026``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEBHOOK_PATH = "/services/T00DEMO/B00DEMO/local-sink"


class SlackSink(ThreadingHTTPServer):
    """The server: ``folder`` the messages, ``calls`` every request seen (status, path, payload)."""

    daemon_threads = True

    def __init__(self, folder: Path | str, port: int = 0, host: str = "127.0.0.1"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.answers: list[int] = []
        self.calls: list[dict] = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def webhook_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{WEBHOOK_PATH}"

    def receive(self, path: str, body: bytes) -> tuple[int, str]:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self._lock:
            status = self.answers.pop(0) if self.answers else (200 if isinstance(payload, dict) else 400)
            self.calls.append({"status": status, "path": path, "payload": payload})
            seq = next(self._seq)
        if status != 200:
            return status, "invalid_payload" if status == 400 else "internal_error"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{os.getpid()}-{seq:05d}.json"
        record = {"received_at": stamp, "path": path, "payload": payload}
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False))
        os.replace(tmp, self.folder / name)
        return 200, "ok"

    def start(self) -> SlackSink:
        self._thread = threading.Thread(target=self.serve_forever, name="slack-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: SlackSink

    def do_POST(self):  # noqa: N802 - http.server's hook name
        length = int(self.headers.get("Content-Length") or 0)
        status, text = self.server.receive(self.path, self.rfile.read(length))
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - quiet: the files are the record
        pass


def start(folder: Path | str, port: int = 0, host: str = "127.0.0.1") -> SlackSink:
    """Start the sink in a thread of this process (``.stop()`` ends it)."""
    return SlackSink(folder, port, host).start()


def messages(folder: Path | str) -> list[dict]:
    """The kept messages (``{"received_at", "path", "payload"}``), oldest first."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True)
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    sink = SlackSink(args.folder, args.port, args.host)
    print(f"Slack webhook sink on {sink.webhook_url}, writing to {args.folder}", flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=sink.shutdown).start())
    sink.serve_forever()
    sink.server_close()


if __name__ == "__main__":
    main()
