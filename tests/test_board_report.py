"""The monthly report's numbers on seeded records, its CSV and XLSX read back, and bad months refused.

The seed is November 2026 in Bangkok; the expected numbers are counted by hand from it (see each
comment), including the month's edges in Thai time (a request filed at 23:30 on 30 November belongs to
November, one at 00:30 on 1 December does not, although both are 30 November in UTC). The XLSX is
written by XlsxWriter and read here by openpyxl.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from sb87 import steps
from sb87.backup import drill, freshness
from sb87.board import app as board_app
from sb87.board import data, report
from sb87.records import store
from sb87.settings import organisation
from sb87.timekeeping.workdays import WorkingCalendar

BKK = report.BANGKOK
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=BKK)
START, END = report.parse_month("2026-11", NOW)


def t(day: int, hour: int = 10, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BKK)


def run(run_id: str, state: str, started: datetime, ended: datetime | None, *tasks: tuple[str, str]) -> data.RunRecord:
    return data.RunRecord(run_id, state, {"agency": "สำนักงานทางหลวงที่ 1"}, started.astimezone(UTC),
                          ended.astimezone(UTC) if ended else None,
                          tuple({"task_id": task, "state": st, "start_date": None, "end_date": None}
                                for task, st in tasks))


RUNS = [
    run("r1", "success", t(3), t(10), (steps.NOTIFY_RESULT, "success")),  # received, completed
    run("r2", "success", t(5), t(6), (steps.NOTIFY_REJECTION, "success")),  # received, rejected
    run("r3", "failed", t(28, month=10), t(2), (steps.READINESS, "failed")),  # failed in Nov, received in Oct
    run("r4", "running", t(29), None),  # received
    run("r5", "running", t(30, 23, 30), None),  # received: 23:30 on 30 Nov in Bangkok
    run("r6", "running", t(1, 0, 30, month=12), None),  # not: 1 December in Bangkok
    run("r7", "success", t(20), t(1, 1, 0, month=12), (steps.NOTIFY_RESULT, "success")),  # received; ended in Dec
]
SUMMARIES = {  # run: [(step, ended, working days used, met)]
    "r1": [("director_decision", t(4), 0.5, "met"), ("coordination", t(8), 2.0, "met")],
    "r2": [("director_decision", t(6), 0.2, "met")],
    "r3": [("director_decision", t(1), 1.5, "missed"), ("coordination", t(2), 0.7, "failed")],
    "r7": [("director_decision", t(1, 9, 0, month=12), 0.1, "met")],  # December: not counted
}


@pytest.fixture
def project_db(tmp_path: Path) -> Iterator[Any]:
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    for run_id, rows in SUMMARIES.items():
        store.save_summary(eng, run_id, [{"step": step, "started_at": ended - timedelta(days=1), "ended_at": ended,
                                          "due_at": ended, "working_days_used": used, "met": met}
                                         for step, ended, used, met in rows])
    for sid, created in (("s1", t(1, month=10)), ("s2", t(15)), ("s3", t(2, month=12)), ("s4", t(1, month=9))):
        freshness.record_policy(eng, server_id=sid, hostname=sid, agency="", ssh_conn_id="c", schedule="daily 01:00",
                                run_id="r1", now=created)
    freshness.deactivate_policy(eng, "s4", t(20, month=10))  # removed before November: not protected
    with eng.begin() as db:
        def check(sid: str, when: datetime, state: str) -> None:
            db.execute(freshness.checks.insert().values(checked_at=when.astimezone(UTC), server_id=sid, state=state,
                                                        detail=""))
        for day in range(1, 31):  # s1: 30 days checked, 10 and 11 November overdue
            check("s1", t(day, 14, 30), freshness.OVERDUE if day in (10, 11) else freshness.OK)
        for day in range(16, 31):  # s2: 15 days, all fresh (on the 20th a failed check, then an ok one)
            check("s2", t(day, 14, 30), freshness.OK)
        check("s2", t(20, 9, 0), freshness.FAILED)
        check("s3", t(30, 14, 30), freshness.OVERDUE)  # not protected in November
        check("s1", t(1, 14, 30, month=12), freshness.OVERDUE)  # December
        for sid, state, finished in (("s1", "passed", t(2, 19, 30)), ("s2", "failed", t(2, 19, 40)),
                                     ("s2", "passed", t(3, 10, 0)), ("s1", "passed", t(1, 19, 30, month=12))):
            db.execute(drill.drills.insert().values(run_id="d", server_id=sid, hostname=sid, state=state,
                                                    started_at=finished, finished_at=finished.astimezone(UTC),
                                                    files=1, bytes=1, verified=1, changed=0, mismatches=0,
                                                    duration_seconds=1.0, detail=""))
    yield eng
    store.engine.cache_clear()


def records(eng: Any) -> dict[str, Any]:
    return {"runs": RUNS, "summaries": report.step_summaries(eng, START, END),
            "policies": list(data.server_facts(eng).policies.values()),
            "checks": report.freshness_checks(eng, START, END), "drills": report.month_drills(eng, START, END)}


EXPECTED = {
    "month": "2026-11", "month_thai": "พฤศจิกายน 2569",
    "received": 5, "completed": 1, "rejected": 1, "failed": 1,  # r1 r2 r4 r5 r7 / r1 / r2 / r3
    "servers_protected": 2,  # s1, s2
    "server_days_checked": 45, "server_days_fresh": 43, "fresh_day_share": round(43 / 45, 4),
    "drills_run": 3, "drills_passed": 2,  # s1 passed, s2 failed then passed; December's not counted
}
EXPECTED_STEPS = {  # step number: (finished, within limit, median working days) — December's row left out
    2: (3, 2, 0.5),  # r1 0.5 met, r2 0.2 met, r3 1.5 missed
    3: (2, 1, 1.35),  # r1 2.0 met, r3 0.7 failed
    5: (0, 0, None), 6: (0, 0, None), 7: (0, 0, None),
}


def test_the_months_numbers_equal_a_count_of_the_seed(project_db: Any) -> None:
    numbers = report.report(START, END, **records(project_db))
    assert {k: numbers[k] for k in EXPECTED} == EXPECTED
    got = {s["step"]: (s["finished"], s["within_limit"], s["median_working_days"]) for s in numbers["steps"]}
    assert got == EXPECTED_STEPS
    assert next(s for s in numbers["steps"] if s["step"] == 2)["share_within_limit"] == round(2 / 3, 4)


def client(eng: Any) -> TestClient:
    app = board_app.create_app()
    app.dependency_overrides[board_app.viewer] = lambda: organisation().person("itc_director")
    app.dependency_overrides[board_app.report_records] = lambda: lambda start, end, now: records(eng)
    return TestClient(app)


def test_the_report_as_csv_and_as_xlsx_read_back_by_another_library(project_db: Any) -> None:
    c = client(project_db)
    as_csv = c.get("/report.csv", params={"month": "2026-11"})
    assert as_csv.status_code == 200, as_csv.text
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    csv_values = {key: value for _label, key, value in rows[1:]}
    as_xlsx = c.get("/report.xlsx", params={"month": "2026-11"})
    assert as_xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content)).active
    xlsx_values = {row[1]: row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert sheet.cell(1, 1).value == "รายการ"
    for key in ("received", "completed", "rejected", "failed", "servers_protected", "drills_run", "drills_passed"):
        assert xlsx_values[key] == EXPECTED[key], key
        assert int(csv_values[key]) == EXPECTED[key], key
    assert xlsx_values["month"] == csv_values["month"] == "พฤศจิกายน 2569"
    assert xlsx_values["fresh_day_share"] == pytest.approx(43 / 45, abs=1e-4)
    assert xlsx_values["step2_median_working_days"] == 0.5 and csv_values["step3_median_working_days"] == "1.35"
    assert xlsx_values["step5_share_within_limit"] is None and csv_values["step5_share_within_limit"] == ""


@pytest.mark.parametrize("month", ["2026-13", "11/2026", "2026-1", "", "2569-11", "2099-01"])
def test_a_malformed_or_future_month_gets_400_naming_the_field(project_db: Any, month: str) -> None:
    c = client(project_db)
    for path in ("/api/report", "/report.csv", "/report.xlsx"):
        response = c.get(path, params={"month": month} if month else {"month": "x"})
        assert response.status_code == 400, (path, month, response.text)
        assert response.json()["field"] == "month" and "month" in response.json()["detail"]


def test_without_a_month_the_report_is_last_months(project_db: Any) -> None:
    numbers = client(project_db).get("/api/report").json()
    today = datetime.now(BKK)
    first = today.replace(day=1)
    last_month = first - timedelta(days=1)
    assert numbers["month"] == f"{last_month.year}-{last_month.month:02d}"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_the_report_memo_reads_word_for_word(project_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    numbers = report.report(START, END, **records(project_db))
    pdf = report.memo_pdf(numbers, NOW, project_db)
    again = report.memo_pdf(numbers, NOW, project_db)
    assert again == pdf
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                                   text=True).stdout.split())
    org = organisation().raw["organisation"]
    for words in ("บันทึกข้อความ", f"ที่ {org['group_letter_code']}/1",  # the group's first number: kept on a re-run
                  "วันที่ 4 ธันวาคม 2569",
                  "เรื่อง รายงานผลการให้บริการฝากเครื่อง Server ประจำเดือนพฤศจิกายน 2569",
                  f"เรียน {org['director_position']}",
                  "คำขอที่รับในเดือน 5 คำขอ", "ดำเนินการเสร็จสิ้น 1 คำขอ", "ไม่อนุมัติ 1 คำขอ", "ล้มเหลว 1 คำขอ",
                  "ขั้นตอนที่ 2 ทันกำหนด 2 จาก 3 (ร้อยละ 66.7) มัธยฐาน 0.50 วันทำการ",
                  "ขั้นตอนที่ 3 ทันกำหนด 1 จาก 2 (ร้อยละ 50.0) มัธยฐาน 1.35 วันทำการ",
                  "เครื่องที่ได้รับการสำรองข้อมูล 2 เครื่อง", "วันที่ข้อมูลสำรองเป็นปัจจุบัน ร้อยละ 95.6",
                  "(นายประเสริฐ มั่นคง)"):
        assert words in text, (words, text)
    # The chart of per-step timeliness follows on its own page.
    chart = " ".join(subprocess.run(["pdftotext", "-f", "2", "-l", "2", "-layout", str(pdf), "-"], check=True,
                                    capture_output=True, text=True).stdout.split())
    assert "แผนภูมิ: สัดส่วนขั้นตอนที่เสร็จทันกำหนด ประจำเดือนพฤศจิกายน 2569" in chart
    assert "ขั้นตอนที่ 2 66.7% (2/3)" in chart and "ขั้นตอนที่ 3 50.0% (1/2)" in chart
    assert "ขั้นตอนที่ 5 ไม่มีขั้นตอนที่เสร็จ" in chart


def test_the_report_goes_out_on_the_first_official_working_day() -> None:
    cal = WorkingCalendar()
    assert report.first_working_day(2026, 11, cal) == date(2026, 11, 2)  # 1 November is a Sunday
    # 1 May (National Labour Day) is a working day for government offices.
    assert report.first_working_day(2026, 5, cal) == date(2026, 5, 1)
    # 1 August 2026 is a Saturday; an extra day off on Monday the 3rd moves it to Tuesday.
    assert report.first_working_day(2026, 8, WorkingCalendar(extra_days_off={date(2026, 8, 3): "วันหยุดพิเศษ"})) \
        == date(2026, 8, 4)
