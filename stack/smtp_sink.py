"""The SMTP sink: aiosmtpd's own `Mailbox` handler keeps every message received on loopback in a Maildir.

It runs as its own process (aiosmtpd's command line, `… -c aiosmtpd.handlers.Mailbox <dir>`) so the
stack stops it like the other components. The handler records the envelope in `X-MailFrom`/`X-RcptTo`
headers, so tests can check Bcc recipients, which never appear in the message itself.

The mails name people and carry their memos: the Maildir is 0700 and every message 0600 (the sink runs
with umask 077, since Python's `mailbox` creates messages 0666 less the umask).
"""

from __future__ import annotations

import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

#: `python -m aiosmtpd` with umask 077: every message file is created 0600.
PRIVATE_SINK = "import os, runpy; os.umask(0o077); runpy.run_module('aiosmtpd', run_name='__main__', alter_sys=True)"


def argv(port: int, mail_dir: Path, host: str = "127.0.0.1") -> list[str]:
    """The sink's command line; creates the Maildir's folders, which the handler expects to exist."""
    mail_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mail_dir.chmod(0o700)
    for sub in ("tmp", "new", "cur"):
        (mail_dir / sub).mkdir(mode=0o700, exist_ok=True)
        (mail_dir / sub).chmod(0o700)
    return [sys.executable, "-c", PRIVATE_SINK, "--nosetuid", "--smtputf8", "--size", str(64 * 2**20),
            "--listen", f"{host}:{port}", "--class", "aiosmtpd.handlers.Mailbox", str(mail_dir)]


def read_mail(mail_dir: Path) -> list[EmailMessage]:
    """Every message in the sink, oldest first, parsed with `email.policy.default` (decoded headers)."""
    parser = BytesParser(policy=policy.default)
    files = [p for sub in ("new", "cur") for p in (Path(mail_dir) / sub).glob("*")]
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [parser.parsebytes(p.read_bytes()) for p in files]  # type: ignore[misc]
