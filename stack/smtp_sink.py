"""SMTP sink: every message received on loopback becomes one `.eml` file.

Run as its own process (`python -m stack.smtp_sink --port P --dir D`) so the stack can stop
it like the other components. Files are named so that sorting by name gives arrival order,
and written to a temporary name then renamed, so a reader never sees half a message.
The envelope is kept in `X-MailFrom`/`X-RcptTo` headers (as aiosmtpd's Message handler does)
so tests can check Bcc recipients, which never appear in the message itself.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class EmlDirHandler:
    """aiosmtpd handler writing each message to `<ns-timestamp>-<seq>.eml` in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        head = (
            f"X-Peer: {peer}\r\n"
            f"X-MailFrom: {envelope.mail_from}\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns():020d}-{next(self._seq):06d}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(head + raw)
        os.replace(tmp, self.directory / name)
        return "250 Message accepted for delivery"


def read_mail(mail_dir: Path) -> list[EmailMessage]:
    """Every message in the sink, oldest first, parsed with `email.policy.default` (decoded headers)."""
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(Path(mail_dir).glob("*.eml"))]  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args(argv)
    controller = Controller(
        EmlDirHandler(args.dir), hostname=args.host, port=args.port, enable_SMTPUTF8=True,
        data_size_limit=64 * 1024 * 1024,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print(f"smtp sink on {args.host}:{args.port} writing to {args.dir}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
