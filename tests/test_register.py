"""The document register (ทะเบียนหนังสือรับ–ส่ง): numbers per Buddhist-Era year, never reused, concurrency-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sb87.records import store

BKK = ZoneInfo("Asia/Bangkok")


@pytest.fixture(params=["postgresql", "sqlite"])
def register_engine(request, tmp_path):
    if request.param == "sqlite":
        return store.engine(f"sqlite:///{tmp_path / 'register.db'}")
    return store.engine(request.getfixturevalue("machine_postgres"))


def test_twenty_concurrent_runs_get_twenty_consecutive_numbers(register_engine) -> None:
    when = datetime(2026, 11, 24, 10, tzinfo=BKK)
    with ThreadPoolExecutor(max_workers=20) as pool:
        rows = list(pool.map(
            lambda i: store.register_document(register_engine, f"run-{i}", "in", f"คำขอที่ {i}", when), range(20)
        ))
    numbers = sorted(r["number"] for r in rows)
    first = numbers[0]
    assert numbers == list(range(first, first + 20))
    assert {r["year_be"] for r in rows} == {2569}


def test_same_run_keeps_its_number(register_engine) -> None:
    when = datetime(2026, 11, 24, 10, tzinfo=BKK)
    first = store.register_document(register_engine, "run-again", "out", "แจ้งผล", when)
    again = store.register_document(register_engine, "run-again", "out", "แจ้งผล", when)
    assert again["number"] == first["number"]
    other = store.register_document(register_engine, "run-other", "out", "แจ้งผล", when)
    assert other["number"] == first["number"] + 1


def test_numbers_restart_at_the_buddhist_era_new_year(register_engine) -> None:
    december = datetime(2026, 12, 31, 23, 59, tzinfo=BKK)
    last = store.register_document(register_engine, "run-dec", "in", "ธันวาคม", december)
    new = store.register_document(register_engine, "run-jan", "in", "มกราคม", datetime(2027, 1, 1, 0, 1, tzinfo=BKK))
    assert (last["year_be"], new["year_be"]) == (2569, 2570)
    assert new["number"] == 1
    # 1 January 00:01 in Bangkok is still 31 December in UTC: the Thai date decides the year.
    utc_view = datetime(2026, 12, 31, 17, 30, tzinfo=ZoneInfo("UTC"))
    assert store.register_document(register_engine, "run-utc", "in", "x", utc_view)["year_be"] == 2570


@pytest.mark.server
def test_numbering_survives_a_restart_of_the_project_postgresql(tmp_path) -> None:
    """The project's PostgreSQL restarts in the middle of a burst of registrations: each request, retried
    as its task would be, ends with one number; none is lost, none is given twice."""
    import threading
    import time

    from sqlalchemy.exc import DBAPIError

    from stack.ports import free_ports
    from stack.postgres import Postgres

    pg = Postgres(tmp_path / "pgdata", free_ports()["pg"], tmp_path / "postgres.log")
    pg.start()
    try:
        eng = store.engine(pg.url("sb87"))
        when = datetime(2026, 11, 24, 10, tzinfo=BKK)
        registered: dict[str, int] = {}
        refused: list[str] = []  # registrations the restart broke off, each retried
        go = threading.Event()

        def file_request(i: int) -> None:
            go.wait()
            for _try in range(120):  # a task's retries, quicker
                try:
                    registered[f"run-{i}"] = store.register_document(eng, f"run-{i}", "in", "x", when)["number"]
                    return
                except DBAPIError as err:
                    refused.append(type(err.orig).__name__)
                    time.sleep(0.25)

        threads = [threading.Thread(target=file_request, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        go.set()
        while len(registered) < 5:
            time.sleep(0.01)
        pg.stop()  # fast shutdown: open transactions are rolled back, connections cut
        pg.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(registered) == 40
        assert refused, "the restart must have cut some registrations off"
        numbers = sorted(registered.values())
        assert numbers == list(range(1, 41)), numbers
        # Asking again after the restart, as a retried task would, gives each run the number it has.
        assert all(store.register_document(eng, run, "in", "x", when)["number"] == n for run, n in registered.items())
    finally:
        store.engine.cache_clear()
        pg.stop()
