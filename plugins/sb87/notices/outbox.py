"""The outbox: every e-mail notice is stored, rendered, before anyone tries to send it, and stays
until an SMTP server has accepted it — so no notice is lost and none is sent twice.

- `post` queues a notice once per run and key (the rendered MIME bytes, a Message-ID derived from
  the run and the key) and tries it once. SMTP failures are recorded on the row, never raised.
- `deliver` is the one way a notice goes out: claim a lease (`claimed_until`), send, record. While
  the lease holds nobody else sends it; the task's own try and the sweeper never overlap.
- `sweep` (DAG `sb87_notice_outbox`, every minute) delivers whatever is queued with a free or
  expired lease, whatever became of the run that queued it.

A second copy can reach a recipient only when a sender dies (or loses its database) after the
server accepted the message and before the row says so; the copy then carries the same
Message-ID and bytes, so mail clients show it once. Recipients the server refuses for good (5xx)
are recorded and reported to the IT Centre once per notice (kind `refused`, through this outbox);
temporarily refused ones (4xx) stay pending and get the same bytes on a later try.
Tables: `sb87.records.store.outbox`. States and the fault table: docs/notices.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException
from sqlalchemy.engine import Engine

from sb87.notices.messages import build_message, render_notice
from sb87.records import request_record, store
from sb87.settings import organisation, settings

log = logging.getLogger(__name__)

#: How long a sender holds a notice. Longer than the slowest send: SmtpHook's default 30 s timeout
#: times its 6 connection tries, plus the DATA of a memo PDF. A sender that dies holding a lease
#: delays that notice by at most this much.
LEASE = timedelta(minutes=10)
#: Waits between failed tries of one notice: 1, 2, 4 … minutes, at most an hour.
MAX_RETRY = timedelta(hours=1)

QUEUED, SENT, REFUSED = "queued", "sent", "refused"
REFUSED_KIND = "refused"

Refusals = dict[str, tuple[int, bytes | str]]


@dataclass(frozen=True)
class Outgoing:
    """One try of one notice: these bytes, from `mail_from` to `recipients` (the envelope)."""

    message_id: str
    mail_from: str
    recipients: list[str]
    data: bytes


#: A sender: delivers one `Outgoing` and returns smtplib's refused-recipients dict ({} when all
#: were accepted). Raises `smtplib.SMTPRecipientsRefused` when all were refused, and `OSError`,
#: `smtplib.SMTPException` or `DeliveryError` when the message did not go out.
Send = Callable[[Outgoing], Refusals]


class DeliveryError(Exception):
    """The SMTP side failed in a way that is neither an `OSError` nor an `smtplib` error (for
    example Airflow's hook could not load its connection). The notice stays queued."""


# --- senders ----------------------------------------------------------------------------------

class ClientSender:
    """A `Send` over an smtplib client from `connect()`, opened on first use and reused across
    notices (one sweep, one connection). After a failure the next send reconnects."""

    def __init__(self, connect: Callable[[], smtplib.SMTP]) -> None:
        self._connect = connect
        self._client: smtplib.SMTP | None = None

    def __call__(self, out: Outgoing) -> Refusals:
        try:
            if self._client is None:
                self._client = self._connect()
            return self._client.sendmail(out.mail_from, out.recipients, out.data)
        except smtplib.SMTPRecipientsRefused:
            # The server answered (RSET follows in smtplib): the session is still good.
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def __enter__(self) -> ClientSender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _smtp_hook() -> type:
    # Imported when a notice is sent, not at the top: Airflow's SMTP hook and aiosmtplib took 5 ms of
    # every parse of the request DAG, whose steps import this module (bench/parse_time.py).
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    return SmtpHook


def smtp_sender(conn_id: str) -> ClientSender:
    """The production `Send`: the client that Airflow's `SmtpHook` opens for the connection
    `conn_id` (host, port, TLS, login and its retries are the connection's)."""

    def connect() -> smtplib.SMTP:
        hook = _smtp_hook()(smtp_conn_id=conn_id)
        try:
            hook.get_conn()
        except AirflowException as err:
            raise DeliveryError(str(err)) from err
        return hook._smtp_client  # type: ignore[return-value]  # the sync hook builds smtplib clients

    return ClientSender(connect)


def sender_of(conn_id: str) -> str:
    """The From address configured on the SMTP connection (its `from_email` extra); no network."""
    sender = _smtp_hook().get_connection(conn_id).extra_dejson.get("from_email")
    if not sender:
        raise ValueError(f"connection {conn_id!r} has no from_email extra: set the sender address there")
    return sender


# --- queueing ---------------------------------------------------------------------------------

def message_id_for(run_id: str, key: str, sender: str) -> str:
    """The notice's Message-ID: the same for the same run and key on every try and every resend."""
    digest = hashlib.sha256(f"{run_id}\0{key}".encode()).hexdigest()[:40]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sb87.invalid"
    return f"<sb87.{digest}@{domain}>"


def enqueue(
    engine: Engine,
    run_id: str,
    key: str,
    kind: str,
    context: Mapping[str, Any],
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    attachments: Iterable[Path | str] = (),
    *,
    sender: str,
    conn_id: str = "smtp_default",
    now: datetime | None = None,
) -> bool:
    """Render the notice and store it, once per (run, key); True when this call stored it."""
    if store.notice(engine, run_id=run_id, key=key):
        return False  # do not render (or read attachments) for nothing
    now = store.utc(now or datetime.now(UTC))
    message_id = message_id_for(run_id, key, sender)
    notice = render_notice(kind, context)
    msg = build_message(notice, sender=sender, to=to, cc=cc, attachments=[Path(a) for a in attachments],
                        message_id=message_id, date=now)
    recipients = list(dict.fromkeys(addr for _, addr in [*to, *cc]))
    if not recipients:
        raise ValueError(f"notice {key!r} of {run_id} has no recipients")
    return store.enqueue_notice(engine, {
        "run_id": run_id, "notice_key": key, "kind": kind, "message_id": message_id, "conn_id": conn_id,
        "mail_from": parseaddr(sender)[1], "sender": sender, "subject": notice.subject[:1000],
        "recipients": json.dumps(recipients), "pending": json.dumps(recipients), "delivered": "[]",
        "refused": "{}", "message": msg.as_bytes(policy=policy.SMTP), "state": QUEUED, "attempts": 0,
        "created_at": now,
    })


def post(
    engine: Engine,
    run_id: str,
    key: str,
    kind: str,
    context: Mapping[str, Any],
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    attachments: Iterable[Path | str] = (),
    *,
    conn_id: str = "smtp_default",
    sender: str | None = None,
    send: Send | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue the notice once per (run, key), then try to deliver it once. True when this call queued it.

    `sender` defaults to the `from_email` of the SMTP connection `conn_id`, `send` to that
    connection through Airflow's SmtpHook. Does not raise for SMTP failures (the notice stays
    queued for the sweeper); raises for database failures and bad input (no recipients, a missing
    template or attachment, a connection without `from_email`).
    """
    existing = store.notice(engine, run_id=run_id, key=key)
    queued = False
    if existing is None:
        queued = enqueue(engine, run_id, key, kind, context, to, cc, attachments,
                         sender=sender or sender_of(conn_id), conn_id=conn_id, now=now)
        existing = store.notice(engine, run_id=run_id, key=key)
    if existing is None:  # rows are never deleted: this is a database that lost a commit
        raise RuntimeError(f"notice {key!r} of {run_id} vanished from the outbox")
    if existing["state"] == QUEUED:
        own = send is None
        sender_fn = send or smtp_sender(conn_id)
        try:
            deliver(engine, existing["id"], sender_fn, now)
        finally:
            if own and isinstance(sender_fn, ClientSender):
                sender_fn.close()
    return queued


# --- delivery ---------------------------------------------------------------------------------

def retry_delay(attempts: int) -> timedelta:
    """Waits double after each failed try, from `SB87_OUTBOX_RETRY_SECONDS` (default a minute) up to an hour."""
    first = timedelta(seconds=settings().outbox_retry_seconds)
    return min(first * 2 ** max(attempts - 1, 0), MAX_RETRY)


def _describe(err: BaseException) -> str:
    # The class and the server's reply; smtplib never puts the password in an exception.
    return f"{type(err).__name__}: {err}"[:1000]


def _reply(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def deliver(engine: Engine, notice_id: int, send: Send, now: datetime | None = None,
            lease: timedelta = LEASE) -> str:
    """One try of one notice: claim its lease, send, record. Returns what happened: `busy` (sent
    already, or someone holds the lease), `sent`, `refused`, `deferred` (some recipients are still
    pending) or `failed` (nothing went out; queued for a later try)."""
    now = store.utc(now or datetime.now(UTC))
    token = uuid.uuid4().hex
    if not store.claim_notice(engine, notice_id, token, now, now + lease):
        return "busy"
    row = store.notice(engine, notice_id=notice_id)
    if row is None:
        raise RuntimeError(f"outbox row {notice_id} vanished while leased")
    pending = json.loads(row["pending"])
    out = Outgoing(row["message_id"], row["mail_from"], pending, bytes(row["message"]))
    try:
        refused: Mapping[str, Any] = send(out) or {}
    except smtplib.SMTPRecipientsRefused as err:
        refused = err.recipients
    except (OSError, smtplib.SMTPException, DeliveryError) as err:
        error = _describe(err)
        store.record_failure(engine, notice_id, token, error, now + retry_delay(row["attempts"]))
        log.warning("notice %s (%s of %s) not sent, try %d: %s", row["message_id"], row["notice_key"],
                    row["run_id"], row["attempts"], error)
        return "failed"
    except BaseException as err:
        # A bug in the sender, not an SMTP failure: keep the notice, but let the caller see it.
        store.record_failure(engine, notice_id, token, _describe(err), now + retry_delay(row["attempts"]))
        raise
    return _record(engine, row, send, now, refused)


def _record(engine: Engine, row: dict[str, Any], send: Send, now: datetime, refused: Mapping[str, Any]) -> str:
    pending = json.loads(row["pending"])
    # 4xx: the server may take it later (mailbox busy, greylisting); 5xx: it never will.
    temporary = {r: v for r, v in refused.items() if int(v[0]) < 500}
    permanent = {r: [int(v[0]), _reply(v[1])] for r, v in refused.items() if int(v[0]) >= 500}
    accepted = [r for r in pending if r not in refused]
    delivered = json.loads(row["delivered"]) + accepted
    all_refused = {**json.loads(row["refused"]), **permanent}
    still = [r for r in pending if r in temporary]
    if still:
        state = QUEUED
    else:
        state = SENT if delivered else REFUSED
    values: dict[str, Any] = {"state": state, "pending": json.dumps(still), "delivered": json.dumps(delivered),
                              "refused": json.dumps(all_refused, ensure_ascii=False)}
    if state == QUEUED:
        values["claimed_until"] = now + retry_delay(row["attempts"])
        values["last_error"] = "; ".join(f"{r}: {v[0]} {_reply(v[1])}" for r, v in temporary.items())[:1000]
    else:
        values["claimed_until"] = None
        values["sent_at"] = datetime.now(UTC)
    if store.record_delivery(engine, row["id"], values) and state != QUEUED:
        request_record.append(engine, row["run_id"], f"{request_record.NOTICE} {row['notice_key']}",
                              request_record.NOTICE,
                              {"kind": row["kind"], "subject": row["subject"], "message_id": row["message_id"],
                               "delivered": delivered, "refused": all_refused, "state": state})
    if permanent:
        log.warning("notice %s (%s of %s): recipients refused: %s", row["message_id"], row["notice_key"],
                    row["run_id"], ", ".join(f"{r} ({v[0]})" for r, v in permanent.items()))
        _report_refusal(engine, row, all_refused, delivered, send, now)
    return {QUEUED: "deferred", SENT: "sent", REFUSED: "refused"}[state]


def refusal_key(key: str) -> str:
    return f"{key} {REFUSED_KIND}"


def _report_refusal(engine: Engine, row: dict[str, Any], refused: Mapping[str, Any], delivered: list[str],
                    send: Send, now: datetime) -> None:
    """Tell the IT Centre once per notice, through the outbox, that recipients were refused."""
    if row["kind"] == REFUSED_KIND:
        return  # the IT Centre's own address refused the report: the log line is all we can do
    org = organisation()
    context = {
        "notice": {"subject": row["subject"], "kind": row["kind"], "key": row["notice_key"],
                   "message_id": row["message_id"], "run_id": row["run_id"], "created_at": row["created_at"]},
        "refused": [{"address": r, "code": v[0], "reply": v[1]} for r, v in refused.items()],
        "delivered": delivered,
        "org": org.raw["organisation"],
    }
    post(engine, row["run_id"], refusal_key(row["notice_key"]), REFUSED_KIND, context,
         to=[(org["unit"], org["it_centre_email"])], conn_id=row["conn_id"], sender=row["sender"], send=send,
         now=now)


def sweep(engine: Engine, now: datetime | None, send: Send, limit: int = 100) -> list[dict[str, Any]]:
    """Deliver every queued notice whose lease is free or expired (at most `limit`, oldest first).

    Returns one entry per notice tried: message_id, run_id, key and outcome (see `deliver`).
    """
    now = store.utc(now or datetime.now(UTC))
    results = []
    for notice_id in store.due_notices(engine, now, limit):
        outcome = deliver(engine, notice_id, send, now)
        row = store.notice(engine, notice_id=notice_id) or {}
        results.append({"message_id": row.get("message_id"), "run_id": row.get("run_id"),
                        "key": row.get("notice_key"), "outcome": outcome})
    return results


def overdue(engine: Engine, now: datetime | None = None, older_than: timedelta = timedelta(hours=1)
            ) -> list[dict[str, Any]]:
    """Queued notices older than `older_than`: what operators must look at (SMTP down, bad address)."""
    now = store.utc(now or datetime.now(UTC))
    return [r for r in store.outbox_rows(engine, state=QUEUED) if store.utc(r["created_at"]) <= now - older_than]


def send_notice_once(
    run_id: str,
    kind: str,
    context: Mapping[str, Any],
    once_key: str | None = None,
    *,
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    attachments: Iterable[Path] = (),
    conn_id: str = "smtp_default",
) -> bool:
    """Put the notice in the outbox once per run and `once_key` (default: the kind), then try to
    deliver it once.

    A retried task neither mails twice nor loses the notice: an SMTP failure is recorded on the
    notice (attempts, last error) and does not raise; the outbox sweeper (DAG
    `sb87_notice_outbox`) delivers it later. A database failure raises. Returns True when this call
    queued the notice, False when it was queued (or sent) before. See `post`.
    """
    return post(store.project_engine(), run_id, once_key or kind, kind, context, to, cc, attachments,
                       conn_id=conn_id)
