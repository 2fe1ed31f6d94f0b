"""E-mail notices: Thai subject, plain text and HTML from Jinja templates, sent through Airflow's SMTP hook.

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
from sb87.thai_dates import thai_date, thai_date_short


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
) -> EmailMessage:
    """A multipart/alternative (text, HTML) message, mixed with attachments when there are any."""
    msg = EmailMessage()
    msg["Subject"] = notice.subject
    name, addr = parseaddr(sender)
    msg["From"] = _address(name, addr)
    msg["To"] = ", ".join(_address(n, e) for n, e in to)
    if cc:
        msg["Cc"] = ", ".join(_address(n, e) for n, e in cc)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain=addr.rpartition("@")[2] or None)
    msg.set_content(notice.text, charset="utf-8")
    msg.add_alternative(notice.html, subtype="html", charset="utf-8")
    for path in attachments:
        ctype, _ = mimetypes.guess_type(path.name)
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def send_notice(
    kind: str,
    context: Mapping[str, Any],
    *,
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    attachments: Iterable[Path] = (),
    conn_id: str = "smtp_default",
) -> EmailMessage:
    """Render and send one notice through the SMTP connection `conn_id`; returns what was sent."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    notice = render_notice(kind, context)
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        sender = hook.from_email
        if not sender:
            raise ValueError(f"connection {conn_id!r} has no from_email extra: set the sender address there")
        msg = build_message(notice, sender=sender, to=to, cc=cc, attachments=attachments)
        # The hook opens, secures and logs in the client; its own send method is HTML-only.
        hook._smtp_client.send_message(msg)
    return msg


def send_notice_once(run_id: str, kind: str, context: Mapping[str, Any], once_key: str | None = None,
                     **kwargs: Any) -> bool:
    """`send_notice`, at most once per run and `once_key` (default: the kind): a retried task does not
    mail the requester twice.

    The notice is claimed in the project's database (`sb87_step_events`, step "notice") before it is
    sent; a claim whose send failed is sent by the next try. Returns False when it had been sent.
    """
    from sb87 import store

    eng = store.project_engine()
    now = datetime.now(UTC)
    recipients = ", ".join(e for _, e in kwargs.get("to", ()))
    key = once_key or kind
    if not store.claim_event(eng, run_id, "notice", key, now, now, recipients):
        return False
    send_notice(kind, context, **kwargs)
    store.mark_sent(eng, run_id, "notice", key)
    return True
