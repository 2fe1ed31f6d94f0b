"""The project's own database: the document register, what has been sent, per-step summaries,
and the outbox of e-mail notices (`sb87_outbox`, driven by `sb87.notices.outbox`).

It is not Airflow's metadata database: the connection `sb87_db` chooses it (PostgreSQL in
production, a SQLite file by default). The schema changes only through the Alembic migrations of
`sb87.records.schema`, applied on first use; the tables here must match them (a test compares).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from airflow.sdk import Connection
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from sb87.records import schema
from sb87.timekeeping.thai_dates import buddhist_year

DB_CONN_ID = "sb87_db"

metadata = MetaData()

step_events = Table(
    "sb87_step_events",
    metadata,
    Column("run_id", String(250), nullable=False),
    Column("step", String(50), nullable=False),
    Column("level", String(100), nullable=False),  # warning | breach | escalation | a notice's kind
    Column("step_started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("recipients", String(1000), nullable=False, default=""),
    UniqueConstraint("run_id", "step", "level", name="sb87_step_events_once"),
)

step_summary = Table(
    "sb87_step_summary",
    metadata,
    Column("run_id", String(250), nullable=False),
    Column("step", String(50), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("working_days_used", Float),
    Column("met", String(10)),  # met | missed | open
    UniqueConstraint("run_id", "step", name="sb87_step_summary_once"),
)


register_counters = Table(
    "sb87_register_counters",
    metadata,
    Column("year_be", Integer, nullable=False),
    Column("kind", String(10), nullable=False),  # in (เลขรับ) | out (เลขที่หนังสือส่ง)
    Column("last_number", Integer, nullable=False),
    UniqueConstraint("year_be", "kind", name="sb87_register_counters_key"),
)

register = Table(
    "sb87_register",
    metadata,
    Column("year_be", Integer, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("number", Integer, nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("year_be", "kind", "number", name="sb87_register_number_once"),
    UniqueConstraint("run_id", "kind", name="sb87_register_run_once"),
)

assignments = Table(
    "sb87_assignments",
    metadata,
    Column("run_id", String(250), nullable=False),
    Column("user_id", String(100), nullable=False),
    Column("ordered_by", String(100), nullable=False),
    Column("ordered_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "user_id", name="sb87_assignments_once"),
)

#: Every e-mail notice, rendered once (the exact MIME bytes) and kept until an SMTP server took it.
#: States: `queued` (not yet accepted for every recipient; `claimed_until` is the lease of whoever
#: is delivering it, or the earliest next try after a failure), `sent` (accepted; permanently refused
#: recipients are in `refused`), `refused` (every recipient refused permanently). See docs/notices.md.
outbox = Table(
    "sb87_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("notice_key", String(250), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("message_id", String(250), nullable=False),
    Column("conn_id", String(250), nullable=False),
    Column("mail_from", String(320), nullable=False),  # envelope sender
    Column("sender", String(500), nullable=False),  # the From line as configured (display name may be Thai)
    Column("subject", String(1000), nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list: every envelope recipient (To and Cc)
    Column("pending", Text, nullable=False),  # JSON list: recipients no server has accepted yet
    Column("delivered", Text, nullable=False, default="[]"),  # JSON list: accepted recipients
    Column("refused", Text, nullable=False, default="{}"),  # JSON {address: [code, reply]}: refused for good
    Column("message", LargeBinary, nullable=False),  # the MIME bytes, CRLF line ends, sent as they are
    Column("state", String(20), nullable=False, default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(1000)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True)),
    Column("claimed_by", String(64)),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("run_id", "notice_key", name="sb87_outbox_once"),
    UniqueConstraint("message_id", name="sb87_outbox_message_id"),
    Index("sb87_outbox_due", "state", "claimed_until"),
)



@cache
def engine(url: str) -> Engine:
    """The engine of `url`, its schema brought to the newest migration once per process."""
    eng = create_engine(url, future=True, pool_pre_ping=True)
    schema.upgrade(eng)
    return eng


def url_of(conn: Any) -> str:
    """A SQLAlchemy URL from an Airflow connection of type `postgres` or `sqlite` (host = file path)."""
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn.conn_type in ("postgres", "postgresql"):
        auth = quote(conn.login or "", safe="") + (f":{quote(conn.password, safe='')}" if conn.password else "")
        return f"postgresql+psycopg2://{auth}@{conn.host}:{conn.port or 5432}/{conn.schema or 'sb87'}"
    raise ValueError(f"connection {DB_CONN_ID!r} must be of type postgres or sqlite, not {conn.conn_type!r}")


def project_engine() -> Engine:
    """The engine of the connection `sb87_db` (inside a task: through Airflow's secrets)."""
    return engine(url_of(Connection.get(DB_CONN_ID)))


def claim_event(eng: Engine, run_id: str, step: str, level: str, started: datetime, due: datetime,
                recipients: str) -> bool:
    """Record an event before its notice is sent; False when it was recorded (so sent) before.

    The unique (run_id, step, level) key makes concurrent or restarted watches claim each event
    once. An event whose send failed stays without `sent_at` and is sent again by the next watch.
    """
    now = datetime.now(UTC)
    with eng.begin() as db:
        try:
            db.execute(insert(step_events).values(
                run_id=run_id, step=step, level=level, step_started_at=started, due_at=due, fired_at=now,
                recipients=recipients,
            ))
            return True
        except IntegrityError:
            pass
    with eng.begin() as db:
        sent = db.execute(select(step_events.c.sent_at).where(
            step_events.c.run_id == run_id, step_events.c.step == step, step_events.c.level == level,
        )).scalar_one()
    return sent is None


def mark_sent(eng: Engine, run_id: str, step: str, level: str) -> None:
    with eng.begin() as db:
        db.execute(update(step_events).where(
            step_events.c.run_id == run_id, step_events.c.step == step, step_events.c.level == level,
        ).values(sent_at=datetime.now(UTC)))


def events(eng: Engine, run_id: str | None = None) -> list[dict]:
    query = select(step_events).order_by(step_events.c.fired_at)
    if run_id:
        query = query.where(step_events.c.run_id == run_id)
    with eng.begin() as db:
        return [dict(row._mapping) for row in db.execute(query)]


def save_summary(eng: Engine, run_id: str, rows: list[dict]) -> None:
    """Replace the run's per-step summary (a re-run of the summary task writes the same rows)."""
    with eng.begin() as db:
        db.execute(step_summary.delete().where(step_summary.c.run_id == run_id))
        if rows:
            db.execute(insert(step_summary), [{"run_id": run_id, **row} for row in rows])


def register_document(eng: Engine, run_id: str, kind: str, subject: str, when: datetime | None = None) -> dict:
    """The register number of a run's incoming request (`in`) or outgoing memo (`out`).

    Numbers run per Buddhist-Era year and kind, are never reused, and are handed out one at a time
    under concurrent runs (the counter row is updated atomically). Asking again for the same run and
    kind returns the number it already has, so a retried task does not take a second number.
    """
    when = when or datetime.now(UTC)
    year = buddhist_year(when)
    for _attempt in range(50):
        try:
            with eng.begin() as db:
                existing = db.execute(
                    select(register).where(register.c.run_id == run_id, register.c.kind == kind)
                ).first()
                if existing:
                    return dict(existing._mapping)
                number = db.execute(
                    update(register_counters)
                    .where(register_counters.c.year_be == year, register_counters.c.kind == kind)
                    .values(last_number=register_counters.c.last_number + 1)
                    .returning(register_counters.c.last_number)
                ).scalar()
                if number is None:
                    number = 1
                    db.execute(insert(register_counters).values(year_be=year, kind=kind, last_number=1))
                row = {"year_be": year, "kind": kind, "number": number, "run_id": run_id,
                       "subject": subject[:300], "registered_at": when}
                db.execute(insert(register).values(**row))
                return row
        except IntegrityError:
            # Another run created this year's counter first, or this run registered concurrently:
            # the whole transaction rolled back (no number lost); look again.
            continue
    raise RuntimeError(f"could not register {kind} document for {run_id}")


def save_assignment(eng: Engine, run_id: str, user_ids: list[str], ordered_by: str) -> None:
    """Who was ordered to do a request's work (step 4); a re-run replaces the run's rows."""
    now = datetime.now(UTC)
    with eng.begin() as db:
        db.execute(assignments.delete().where(assignments.c.run_id == run_id))
        db.execute(insert(assignments), [{"run_id": run_id, "user_id": u, "ordered_by": ordered_by, "ordered_at": now}
                                         for u in user_ids])


def assigned_staff(eng: Engine, run_id: str) -> list[str]:
    """The user ids ordered to do a request's work, or [] before step 4."""
    with eng.connect() as db:
        rows = db.execute(select(assignments.c.user_id).where(assignments.c.run_id == run_id)
                          .order_by(assignments.c.user_id)).all()
    return [r.user_id for r in rows]


# --- the outbox (sb87.notices.outbox holds the delivery rules; these are its single statements) -----------

def utc(when: datetime) -> datetime:
    """`when` in UTC; a naive value (SQLite gives those back) is taken as UTC already.

    Every outbox time is stored in UTC, so SQLite's text comparison of times orders them correctly.
    """
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def enqueue_notice(eng: Engine, row: dict[str, Any]) -> bool:
    """Insert a rendered notice; False when the run already has one with this key (nothing changes)."""
    try:
        with eng.begin() as db:
            db.execute(insert(outbox).values(**row))
        return True
    except IntegrityError:
        return False


def notice(eng: Engine, *, notice_id: int | None = None, run_id: str | None = None,
           key: str | None = None) -> dict[str, Any] | None:
    """One outbox row by id, or by (run id, notice key); None when there is none."""
    query = select(outbox)
    query = query.where(outbox.c.id == notice_id) if notice_id is not None else query.where(
        outbox.c.run_id == run_id, outbox.c.notice_key == key)
    with eng.connect() as db:
        row = db.execute(query).first()
    return dict(row._mapping) if row else None


def claim_notice(eng: Engine, notice_id: int, token: str, now: datetime, until: datetime) -> bool:
    """Take the lease on a queued notice whose lease is free or expired; True when this caller got it.

    One conditional UPDATE: PostgreSQL re-checks the condition after waiting for a concurrent
    claimer's row lock and SQLite serialises writers, so of any number of claimers one wins.
    """
    with eng.begin() as db:
        result = db.execute(update(outbox).where(
            outbox.c.id == notice_id,
            outbox.c.state == "queued",
            (outbox.c.claimed_until.is_(None)) | (outbox.c.claimed_until <= utc(now)),
        ).values(claimed_by=token, claimed_until=utc(until), attempts=outbox.c.attempts + 1))
        return result.rowcount == 1


def record_delivery(eng: Engine, notice_id: int, values: dict[str, Any]) -> bool:
    """Write a send's outcome (`values`: state, pending, delivered, refused, …) and free the lease.

    Only a queued row changes: if another sender (after this one's lease ran out) marked it first,
    its record stands. True when this call wrote it.
    """
    with eng.begin() as db:
        result = db.execute(update(outbox).where(outbox.c.id == notice_id, outbox.c.state == "queued")
                            .values(claimed_by=None, **values))
        return result.rowcount == 1


def record_failure(eng: Engine, notice_id: int, token: str, error: str, retry_at: datetime) -> None:
    """A send that reached no recipient: keep the notice queued, note why, try again from `retry_at`."""
    with eng.begin() as db:
        db.execute(update(outbox).where(outbox.c.id == notice_id, outbox.c.claimed_by == token).values(
            claimed_by=None, claimed_until=utc(retry_at), last_error=error[:1000]))


def due_notices(eng: Engine, now: datetime, limit: int = 100) -> list[int]:
    """Ids of queued notices nobody holds (lease free or expired), oldest first."""
    with eng.connect() as db:
        return list(db.execute(select(outbox.c.id).where(
            outbox.c.state == "queued",
            (outbox.c.claimed_until.is_(None)) | (outbox.c.claimed_until <= utc(now)),
        ).order_by(outbox.c.created_at, outbox.c.id).limit(limit)).scalars())


def outbox_rows(eng: Engine, run_id: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows without the message bytes, oldest first (for reports and tests)."""
    query = select(*[c for c in outbox.c if c.name != "message"]).order_by(outbox.c.created_at, outbox.c.id)
    if run_id:
        query = query.where(outbox.c.run_id == run_id)
    if state:
        query = query.where(outbox.c.state == state)
    with eng.connect() as db:
        return [dict(row._mapping) for row in db.execute(query)]
