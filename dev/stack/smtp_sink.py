"""A local SMTP server (aiosmtpd on 127.0.0.1) that keeps every message as an ``.eml`` file.

The demo points ``SMTP_SERVER``/``SMTP_PORT`` at it, and the tests use it as the real SMTP peer:
nothing leaves the machine, and every e-mail the pipeline sends can be opened and parsed.
Each message is written atomically (temporary file, then rename), named
``<UTC time>-<sequence>.eml`` so a listing is in arrival order.

Command line: ``python -m dev.stack.smtp_sink --outbox .local/outbox --port 8025``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path


class OutboxHandler:
    """aiosmtpd handler: one ``.eml`` file per accepted message (one per envelope)."""

    def __init__(self, outbox: Path | str):
        self.outbox = Path(outbox)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self._lock:
            seq = next(self._seq)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{os.getpid()}-{seq:05d}.eml"
        # Keep the envelope too: Bcc recipients are only visible there.
        header = (
            f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.outbox / name)
        return "250 Message accepted for delivery"


def start(outbox: Path | str, port: int = 8025, host: str = "127.0.0.1"):
    """Start the sink in this process; returns the aiosmtpd Controller (call ``.stop()``)."""
    from aiosmtpd.controller import Controller

    controller = Controller(OutboxHandler(outbox), hostname=host, port=port)
    controller.start()
    return controller


def messages(outbox: Path | str) -> list[Path]:
    """The ``.eml`` files in the outbox, oldest first."""
    return sorted(Path(outbox).glob("*.eml"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    controller = start(args.outbox, args.port, args.host)
    print(f"SMTP sink on {args.host}:{args.port}, writing to {args.outbox}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.2)
    controller.stop()


if __name__ == "__main__":
    main()
