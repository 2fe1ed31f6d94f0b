"""The document register (ทะเบียนหนังสือรับ–ส่ง): numbers per Buddhist-Era year, never reused, concurrency-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sb87 import store

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
