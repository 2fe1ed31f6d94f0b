"""The project's own database: the document register, what has been sent, per-step summaries.

It is not Airflow's metadata database: the connection `sb87_db` chooses it (PostgreSQL in
production, a SQLite file by default). Tables are created on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

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


@cache
def engine(url: str) -> Engine:
    eng = create_engine(url, future=True, pool_pre_ping=True)
    metadata.create_all(eng)
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
    from airflow.sdk import Connection

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
    from sb87.thai_dates import buddhist_year

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
