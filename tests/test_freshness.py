"""The backup-freshness watch's logic on a controlled clock, its records, and its alert e-mails.

The same watch against a real deposited server whose backups stop is in tests/test_data_path.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sb87.backup.freshness import (
    BANGKOK,
    FAILED,
    NOT_YET_DUE,
    OK,
    OVERDUE,
    Alert,
    Observation,
    assess,
    incident_rows,
    previous_due,
    record_policy,
    watch,
    weekly_subset,
)
from sb87.notices.messages import render_notice
from sb87.records import store

GRACE = timedelta(hours=6)
CREATED = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
POLICY = {"server_id": "fs01", "hostname": "fileserver01", "agency": "แขวงทางหลวงสกลนครที่ 1",
          "schedule": "daily 01:00", "created_at": CREATED, "run_id": "manual__1", "ssh_conn_id": "sb87_srv_fs01"}


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BANGKOK)


def test_previous_due_for_each_kind_of_schedule_in_thai_time() -> None:
    now = bkk(2026, 11, 25, 0, 30)  # a Wednesday, before 01:00
    assert previous_due("daily 01:00", now, BANGKOK) == bkk(2026, 11, 24, 1, 0)
    assert previous_due("weekly sun 02:30", now, BANGKOK) == bkk(2026, 11, 22, 2, 30)
    assert previous_due("monthly 1 03:00", now, BANGKOK) == bkk(2026, 11, 1, 3, 0)
    assert previous_due("monthly 28 03:00", now, BANGKOK) == bkk(2026, 10, 28, 3, 0)
    assert previous_due("monthly 1 03:00", bkk(2026, 1, 1, 2, 0), BANGKOK) == bkk(2025, 12, 1, 3, 0)


def test_a_fresh_backup_is_ok_and_a_missing_one_is_overdue_only_after_the_grace() -> None:
    last_night = bkk(2026, 11, 25, 1, 5)
    seen = Observation("fs01", last_night, {"exit": 0})
    assert assess(bkk(2026, 11, 25, 14, 0), POLICY, seen, GRACE).state == OK
    # The next night's run is due at 01:00 on the 26th; with 6 h of grace it is not late until 07:00.
    assert assess(bkk(2026, 11, 26, 6, 59), POLICY, seen, GRACE).state == OK
    late = assess(bkk(2026, 11, 26, 7, 1), POLICY, seen, GRACE)
    assert late.state == OVERDUE and late.due_at == bkk(2026, 11, 26, 1, 0) and late.reasons


def test_a_failed_scheduled_run_is_reported_even_when_an_older_snapshot_is_fresh() -> None:
    seen = Observation("fs01", bkk(2026, 11, 25, 1, 5), {"exit": 1})
    assert assess(bkk(2026, 11, 25, 14, 0), POLICY, seen, GRACE).state == FAILED


def test_a_new_policy_is_not_late_before_its_first_run() -> None:
    policy = {**POLICY, "created_at": bkk(2026, 11, 25, 10, 0)}
    assert assess(bkk(2026, 11, 25, 14, 0), policy, Observation("fs01", None), GRACE).state == NOT_YET_DUE


def test_weekly_data_check_reads_a_quarter_in_turn() -> None:
    subsets = {weekly_subset(datetime(2026, 1, 4, tzinfo=UTC) + timedelta(weeks=w)) for w in range(4)}
    assert subsets == {"1/4", "2/4", "3/4", "4/4"}


@pytest.fixture
def engine(tmp_path: Path):
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    yield eng
    store.engine.cache_clear()


def test_one_alert_per_incident_and_one_on_recovery(engine) -> None:
    record_policy(engine, server_id="fs01", hostname="fileserver01", agency=POLICY["agency"],
                  ssh_conn_id="sb87_srv_fs01", schedule="daily 01:00", run_id="manual__1", now=CREATED)
    sent: list[Alert] = []

    def send(alert: Alert, context: dict) -> None:
        sent.append(alert)
        notice = render_notice("freshness", {**context, "org": {"unit": "ศูนย์ฯ", "department": "กรมทางหลวง"}})
        assert "fileserver01" in notice.subject and "\n" not in notice.subject

    fresh = {"fs01": Observation("fs01", bkk(2026, 11, 24, 1, 5), {"exit": 0})}
    assert watch(engine, bkk(2026, 11, 24, 14, 0), fresh, send, GRACE) == []
    # Backups stop: the next days are overdue, but the IT Centre hears it once.
    for day in (25, 26, 27):
        watch(engine, bkk(2026, 11, day, 14, 0), fresh, send, GRACE)
    assert [a.kind for a in sent] == ["incident"] and sent[0].assessment.state == OVERDUE
    # They start again: one recovery notice, the incident closed.
    back = {"fs01": Observation("fs01", bkk(2026, 11, 28, 1, 5), {"exit": 0})}
    watch(engine, bkk(2026, 11, 28, 14, 0), back, send, GRACE)
    watch(engine, bkk(2026, 11, 29, 14, 0), {"fs01": Observation("fs01", bkk(2026, 11, 29, 1, 5), {"exit": 0})},
          send, GRACE)
    assert [a.kind for a in sent] == ["incident", "recovery"]
    [incident] = incident_rows(engine)
    assert incident["recovered_at"] is not None and incident["incident_key"] == sent[0].incident_key


def test_freshness_notice_renders_in_thai_with_buddhist_era() -> None:
    assessment = assess(bkk(2026, 11, 26, 14, 0), POLICY, Observation("fs01", bkk(2026, 11, 24, 1, 5), {"exit": 2}),
                         GRACE)
    notice = render_notice("freshness", {"kind": "incident", "policy": POLICY, "assessment": assessment,
                                         "now": bkk(2026, 11, 26, 14, 0),
                                         "org": {"unit": "ศูนย์เทคโนโลยีสารสนเทศ", "department": "กรมทางหลวง"}})
    assert notice.subject.startswith("[SB-8-7] ข้อมูลสำรองขาดช่วง: fileserver01")
    for text in (notice.text, notice.html):
        assert "26 พ.ย. 2569" in text and "ล้มเหลว (รหัส 2)" in text
