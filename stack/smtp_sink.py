"""The SMTP sink: aiosmtpd's own `Mailbox` handler keeps every message received on loopback in a Maildir.

It runs as its own process (`python -m aiosmtpd … -c aiosmtpd.handlers.Mailbox <dir>`) so the stack
stops it like the other components. The handler records the envelope in `X-MailFrom`/`X-RcptTo`
headers, so tests can check Bcc recipients, which never appear in the message itself.
"""

from __future__ import annotations

import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path


def argv(port: int, mail_dir: Path, host: str = "127.0.0.1") -> list[str]:
    """The sink's command line; creates the Maildir's folders, which the handler expects to exist."""
    for sub in ("tmp", "new", "cur"):
        (mail_dir / sub).mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "aiosmtpd", "--nosetuid", "--smtputf8", "--size", str(64 * 2**20),
            "--listen", f"{host}:{port}", "--class", "aiosmtpd.handlers.Mailbox", str(mail_dir)]


def read_mail(mail_dir: Path) -> list[EmailMessage]:
    """Every message in the sink, oldest first, parsed with `email.policy.default` (decoded headers)."""
    parser = BytesParser(policy=policy.default)
    files = [p for sub in ("new", "cur") for p in (Path(mail_dir) / sub).glob("*")]
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [parser.parsebytes(p.read_bytes()) for p in files]  # type: ignore[misc]
