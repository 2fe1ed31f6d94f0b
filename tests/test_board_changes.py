"""The board reads again only the runs that changed, and sees every change (`sb87.board.data.ChangedRuns`).

On Airflow's own schema in a fresh database on the machine's PostgreSQL server (production's database;
the fingerprints use PostgreSQL's `hashtext`): runs, task instances and a waiting decision written as
Airflow writes them, then changed one at a time as Airflow changes them. After every change, what the
board holds must equal a whole read of Airflow's database, and only the run that changed is read again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, update
from sqlalchemy.orm import Session

from sb87 import steps
from sb87.board import data
from stack.server_databases import scratch_database

NOW = datetime(2026, 9, 17, 3, 0, tzinfo=UTC)


@pytest.fixture
def airflow_db() -> Iterator[Any]:
    """Airflow's tables in a database of their own, dropped afterwards."""
    from airflow.models import import_all_models
    from airflow.models.dagrun import DagRun

    with scratch_database("sb87_airflow") as url:
        eng = create_engine(url)
        try:
            import_all_models()
            DagRun.metadata.create_all(eng)
            yield eng
        finally:
            eng.dispose()


def file_run(session: Session, run_id: str, started: datetime) -> dict[str, uuid.UUID]:
    """A request as Airflow holds it once the director is asked: intake done, the decision waiting, every
    later task without a state. Returns the task instances' ids by task id."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI

    session.execute(insert(DagRun.__table__).values(
        dag_id=steps.DAG_ID, run_id=run_id, state="running", run_type="manual", conf={"agency": "แขวงทดสอบ"},
        start_date=started, queued_at=started, run_after=started, clear_number=0))
    ids = {}
    later = (steps.ASSIGN, steps.BACKUP_POLICY.task("create_policy"), steps.NOTIFY_RESULT)
    for task_id in (*steps.INTAKE.tasks[:3], steps.DIRECTOR_DECISION, *later):
        ids[task_id] = uuid.uuid4()
        done = task_id in steps.INTAKE.tasks
        asked = task_id == steps.DIRECTOR_DECISION
        session.execute(insert(TI.__table__).values(
            id=ids[task_id], dag_id=steps.DAG_ID, run_id=run_id, task_id=task_id, map_index=-1, try_number=1,
            pool="default_pool", pool_slots=1,
            state="success" if done else "awaiting_input" if asked else None,
            start_date=started if done or asked else None, end_date=started if done else None))
    session.execute(insert(HITLDetail.__table__).values(
        ti_id=ids[steps.DIRECTOR_DECISION], options=["อนุมัติ", "ไม่อนุมัติ"], subject="[SB-8-7] พิจารณาคำขอ",
        params={}, params_input={}, created_at=started, assignees=[{"id": "itc_director", "name": "itc_director"}]))
    return ids


def whole_read(session: Session, now: datetime) -> list[data.RunRecord]:
    return sorted(data.airflow_runs(session, now), key=lambda r: r.run_id)


def look(reader: data.ChangedRuns, session: Session, now: datetime) -> tuple[list[data.RunRecord], int]:
    runs, read = reader(session, now)
    return sorted(runs, key=lambda r: r.run_id), read


def test_a_look_reads_again_only_the_run_that_changed_and_holds_what_a_whole_read_holds(airflow_db: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI

    reader = data.ChangedRuns()
    with Session(airflow_db) as session:
        ids = {run_id: file_run(session, run_id, NOW - timedelta(hours=h))
               for run_id, h in (("req-a", 5), ("req-b", 4), ("req-c", 3))}
        session.commit()

        def changed(now: datetime = NOW) -> int:
            session.commit()
            runs, read = look(reader, session, now)
            assert runs == whole_read(session, now), "the board holds what Airflow's database holds"
            return read

        assert changed() == 3, "the first look reads every run"
        assert changed() == 0, "nothing changed: nothing read again"

        # The director answers req-a: the decision is answered before its task moves on.
        session.execute(update(HITLDetail.__table__).where(HITLDetail.ti_id == ids["req-a"][steps.DIRECTOR_DECISION])
                        .values(responded_at=NOW, chosen_options=["อนุมัติ"]))
        assert changed() == 1
        [req_a] = [r for r in reader(session, NOW)[0] if r.run_id == "req-a"]
        assert req_a.waiting == (), "an answered decision no longer waits"

        # req-a's decision task ends and step 4 starts.
        session.execute(update(TI.__table__).where(TI.id == ids["req-a"][steps.DIRECTOR_DECISION])
                        .values(state="success", end_date=NOW))
        session.execute(update(TI.__table__).where(TI.id == ids["req-a"][steps.ASSIGN])
                        .values(state="running", start_date=NOW))
        assert changed() == 1

        # A running task's heartbeat is not a change the board shows.
        session.execute(update(TI.__table__).where(TI.id == ids["req-a"][steps.ASSIGN])
                        .values(last_heartbeat_at=NOW + timedelta(seconds=5)))
        assert changed() == 0

        # A task of req-b fails; req-c ends; a new request arrives.
        session.execute(update(TI.__table__).where(TI.id == ids["req-b"][steps.DIRECTOR_DECISION])
                        .values(state="failed", end_date=NOW))
        assert changed() == 1
        session.execute(update(DagRun.__table__).where(DagRun.run_id == "req-c")
                        .values(state="failed", end_date=NOW))
        file_run(session, "req-d", NOW)
        assert changed() == 2

        # A run deleted from Airflow leaves the board.
        session.execute(TI.__table__.delete().where(TI.run_id == "req-d"))
        session.execute(DagRun.__table__.delete().where(DagRun.run_id == "req-d"))
        assert changed() == 0 and "req-d" not in {r.run_id for r in reader(session, NOW)[0]}

        # Whatever a fingerprint might miss, a minute later every run is read again.
        assert changed(NOW + reader.max_age) == 3
