"""The request's record (บันทึกคำขอ): what happened to a request, kept apart from Airflow's metadata.

The request as filed, its receipt and outgoing numbers, every decision (who, when, which option,
the reason, in which capacity), every step's start and end, every notice sent, and the outcome.
Rows are only ever added: revision 0002 makes the database refuse UPDATE, DELETE and TRUNCATE on
the table, and the application role holds SELECT and INSERT only (`sb87.records.schema`). So a run
deleted in Airflow, or purged by `airflow db clean`, leaves its record whole.

Each entry has a key unique within its run (`filed`, `number in`, `decision <task id>`,
`step <name>`, `notice <key>`, `outcome`): a retried task adds nothing twice, and what was
recorded first stands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from sb87.records import store
from sb87.records.store import metadata

FILED, NUMBER, DECISION, STEP, NOTICE, OUTCOME = "filed", "number", "decision", "step", "notice", "outcome"
PIPELINE = "pipeline"  # the actor of what the pipeline itself did
#: Outcomes: what the pipeline's close found, or that someone ended the request by hand.
COMPLETED, REJECTED, FAILED, ENDED_BY_HAND = "completed", "rejected", "failed", "ended_by_hand"

record = Table(
    "sb87_request_record",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("entry", String(250), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),  # when it happened
    Column("actor", String(250), nullable=False),  # a roster user id, an Airflow user, or "pipeline"
    Column("capacity", String(500)),  # in which capacity a person acted (position, acting for …)
    Column("detail", Text, nullable=False),  # JSON
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "entry", name="sb87_request_record_once"),
    Index("sb87_request_record_kind", "kind", "run_id"),
)


def append(eng: Engine, run_id: str, entry: str, kind: str, detail: Mapping[str, Any], *,
           actor: str = PIPELINE, at: datetime | None = None, capacity: str | None = None) -> bool:
    """Add one entry; False (and nothing changes) when the run has an entry with this key already."""
    now = datetime.now(UTC)
    row = {"run_id": run_id, "entry": entry[:250], "kind": kind, "at": at or now, "actor": actor[:250],
           "capacity": (capacity or None) and capacity[:500],
           "detail": json.dumps(detail, ensure_ascii=False, default=str), "recorded_at": now}
    try:
        with eng.begin() as db:
            db.execute(insert(record).values(**row))
        return True
    except IntegrityError:
        return False


def entries(eng: Engine, run_id: str) -> list[dict[str, Any]]:
    """A request's record in the order it was written, `detail` decoded."""
    with eng.connect() as db:
        rows = db.execute(select(record).where(record.c.run_id == run_id).order_by(record.c.id)).all()
    return [{**row._mapping, "detail": json.loads(row.detail)} for row in rows]


def open_requests(eng: Engine) -> list[str]:
    """Run ids of requests filed and not yet given an outcome, oldest first."""
    closed = select(record.c.run_id).where(record.c.kind == OUTCOME)
    with eng.connect() as db:
        return list(db.execute(select(record.c.run_id).where(record.c.kind == FILED, record.c.run_id.not_in(closed))
                               .order_by(record.c.id)).scalars())


def register_number(eng: Engine, run_id: str, kind: str, subject: str, when: datetime | None = None) -> dict:
    """A register number for the run's document of `kind` (`store.register_document`: kept on retry),
    entered in the request's record as `number <kind>`."""
    entry = store.register_document(eng, run_id, kind, subject, when)
    append(eng, run_id, f"{NUMBER} {kind}", NUMBER, {"kind": kind, "number": entry["number"],
                                                      "year_be": entry["year_be"], "subject": entry["subject"]},
           at=entry["registered_at"])
    return entry
