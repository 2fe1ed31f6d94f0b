"""E-mail notices: Thai subject, plain text and HTML from Jinja templates, sent through Airflow's SMTP hook.

`sb87.notices.outbox.send_notice_once` is what tasks call: it goes through the outbox, so a notice is
sent once and never lost.

Each notice kind is three templates in `include/templates/email/`: `<kind>.subject.j2`,
`<kind>.txt.j2` and `<kind>.html.j2`. We build the MIME message ourselves because the smtp
provider's `EmailOperator` sends HTML only, and officials' mail clients (and screen readers) want a
plain-text alternative; the provider's `SmtpHook` still owns the connection, TLS and login.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from sb87.settings import TEMPLATES_DIR
from sb87.timekeeping.thai_dates import thai_date, thai_date_short


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR / "email")),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        keep_trailing_newline=True,
    )
    env.filters["thai_date"] = thai_date
    env.filters["thai_date_short"] = thai_date_short
    return env


def macros() -> Any:
    """The e-mail templates' macros (`_macros.j2`), for Python code that must word things the same way."""
    return _environment().get_template("_macros.j2").module


def render_notice(kind: str, context: Mapping[str, Any]) -> Notice:
    env = _environment()
    subject = env.get_template(f"{kind}.subject.j2").render(context)
    # A header must be one line: a stray newline would let template data add headers.
    subject = " ".join(subject.split())
    return Notice(
        subject=subject,
        text=env.get_template(f"{kind}.txt.j2").render(context),
        html=env.get_template(f"{kind}.html.j2").render(context),
    )


def _address(display_name: str, email: str) -> str:
    # Non-ASCII display names must be encoded on their own, not the whole header (brief §4).
    return formataddr((display_name, email)) if display_name else email


def build_message(
    notice: Notice,
    *,
    sender: str,
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    attachments: Iterable[Path] = (),
    message_id: str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative (text, HTML) message, mixed with attachments when there are any."""
    msg = EmailMessage()
    msg["Subject"] = notice.subject
    name, addr = parseaddr(sender)
    msg["From"] = _address(name, addr)
    msg["To"] = ", ".join(_address(n, e) for n, e in to)
    if cc:
        msg["Cc"] = ", ".join(_address(n, e) for n, e in cc)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain=addr.rpartition("@")[2] or None)
    # Base64 keeps the message 7-bit: the outbox stores these bytes and sends them as they are, to
    # any server, with or without 8BITMIME.
    msg.set_content(notice.text, charset="utf-8", cte="base64")
    msg.add_alternative(notice.html, subtype="html", charset="utf-8", cte="base64")
    for path in attachments:
        ctype, _ = mimetypes.guess_type(path.name)
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg
