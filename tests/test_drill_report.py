"""The monthly drill report to each unit (issue 25, item 4): one paragraph, its servers backed up and proven
restorable with Thai dates, or said plainly not to be.

Fast and real: a SQLite project database (connection sb87_db), the drill records written by the drill's own
`record`, the policies by `record_policy`, an organisation file and inventory of the test's own, and an
aiosmtpd SMTP server on loopback receiving what the outbox sends (connection smtp_default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from test_outbox import SmtpServer

from sb87.backup.drill import FAILED, NOT_RUN, PASSED, DrillResult, drill_rows, record
from sb87.backup.drill_report import context_of, drills_not_passed, send_monthly_reports, unit_reports
from sb87.backup.freshness import active_policies, record_policy
from sb87.notices.messages import render_notice
from sb87.records import store
from sb87.settings import organisation

ROOT = Path(__file__).resolve().parents[1]
SAKON = "แขวงทางหลวงสกลนครที่ 1"
HW1 = "สำนักงานทางหลวงที่ 1"
UNIT = {"agency": SAKON, "email": "sakon1@doh.example.go.th", "name": "ผู้อำนวยการแขวงทางหลวงสกลนครที่ 1"}
# 1 March 2027, 19:30 in Bangkok: the evening of the scheduled drill (the first working day).
NOW = datetime(2027, 3, 1, 12, 30, tzinfo=UTC)
ORG = json.loads((ROOT / "config" / "sb87.json").read_text(encoding="utf-8"))["organisation"]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _drill(eng, server_id: str, state: str, started: str, snapshot: str | None) -> None:
    result = DrillResult(server_id, f"{server_id}.doh.go.th", state=state,
                         snapshot_id="a1b2c3d4" if snapshot else None, snapshot_at=_at(snapshot) if snapshot else None)
    record(eng, result, f"scheduled__{started}", _at(started), _at(started))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """Four servers under active policies: three of Sakon Nakhon 1 (one proven this month, one whose drill
    failed this month after passing in February, one not drilled this month) and one of Highway Office 1,
    which did not ask for reports. Sakon Nakhon 1 asked for them in the organisation file."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [
        {"id": "skn-fs01", "hostname": "skn-fs01.doh.go.th", "agency": SAKON},
        {"id": "skn-db01", "hostname": "skn-db01.doh.go.th", "agency": SAKON},
        {"id": "skn-web01", "hostname": "skn-web01.doh.go.th", "agency": SAKON},
        {"id": "hw1-hrdb01", "hostname": "hw1-hrdb01.doh.go.th", "agency": HW1}]}, ensure_ascii=False),
        encoding="utf-8")
    raw = json.loads((ROOT / "config" / "sb87.json").read_text(encoding="utf-8"))
    raw["drill_reports"] = [UNIT]
    config = tmp_path / "sb87.json"
    config.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_INVENTORY_FILE", str(inventory))
    monkeypatch.setenv("SB87_CONFIG", str(config))
    monkeypatch.setenv("AIRFLOW_CONN_SB87_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "sb87.db")}))
    smtp = SmtpServer().start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "itc@doh.example.go.th",
                  "timeout": 10, "retry_limit": 1}}))
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    for server_id, agency in (("skn-db01", SAKON), ("skn-fs01", SAKON), ("skn-web01", SAKON), ("hw1-hrdb01", HW1)):
        record_policy(eng, server_id=server_id, hostname=f"{server_id}.doh.go.th", agency=agency,
                      ssh_conn_id=f"sb87_srv_{server_id}", schedule="daily 01:00", run_id="manual__p", now=NOW)
    _drill(eng, "skn-db01", PASSED, "2027-02-01T12:10:00", "2027-01-31T18:00:00")  # 1 Feb 2570 in Bangkok
    _drill(eng, "skn-fs01", FAILED, "2027-03-01T12:05:00", "2027-02-28T18:00:00")  # a restore error: no proof
    _drill(eng, "skn-fs01", PASSED, "2027-03-01T12:20:00", "2027-02-28T18:00:00")  # the operator's re-run passed
    _drill(eng, "skn-db01", FAILED, "2027-03-01T12:06:00", "2027-02-28T18:00:00")
    _drill(eng, "skn-web01", PASSED, "2027-02-01T12:12:00", "2027-01-31T18:00:00")  # and nothing in March
    _drill(eng, "hw1-hrdb01", PASSED, "2027-03-01T12:07:00", "2027-02-28T18:00:00")
    try:
        yield eng, smtp
    finally:
        smtp.stop()
        store.engine.cache_clear()


def _paragraph(eng) -> tuple[list, str]:
    reports = unit_reports(drill_rows(eng), active_policies(eng), organisation().raw["drill_reports"], "2027-03")
    assert len(reports) == 1
    return reports, render_notice("drill_report", context_of(reports[0], ORG, NOW.date())).text


def test_the_paragraph_lists_each_server_with_its_backup_and_restore_dates(lab) -> None:
    eng, _ = lab
    reports, text = _paragraph(eng)
    assert [s.hostname for s in reports[0].servers] == ["skn-db01.doh.go.th", "skn-fs01.doh.go.th",
                                                        "skn-web01.doh.go.th"]
    assert ("เครื่อง skn-fs01.doh.go.th ได้สำรองข้อมูลไว้แล้ว (ข้อมูลสำรอง ณ วันที่ 1 มีนาคม 2570) "
            "และทดสอบกู้คืนข้อมูลสำเร็จเมื่อวันที่ 1 มีนาคม 2570 ยืนยันได้ว่ากู้คืนได้จริง") in text
    assert "ประจำเดือนมีนาคม 2570" in text
    body = [line for line in text.splitlines() if line.startswith("ตามที่")]
    assert len(body) == 1, "one paragraph"
    assert all(s.hostname in body[0] for s in reports[0].servers)


def test_a_failed_or_not_run_server_is_reported_as_such_never_as_proven(lab) -> None:
    eng, _ = lab
    reports, text = _paragraph(eng)
    states = {s.server_id: s.state for s in reports[0].servers}
    # skn-db01 passed in February but failed in March: March's drill is what counts.
    assert states == {"skn-db01": FAILED, "skn-fs01": PASSED, "skn-web01": NOT_RUN}
    assert ("เครื่อง skn-db01.doh.go.th การทดสอบกู้คืนข้อมูลประจำเดือนนี้ไม่ผ่าน จึงยังไม่อาจยืนยันได้ว่ากู้คืนได้ "
            "(ทดสอบกู้คืนสำเร็จครั้งล่าสุดเมื่อวันที่ 1 กุมภาพันธ์ 2570 จากข้อมูลสำรอง ณ วันที่ 1 กุมภาพันธ์ 2570)") in text
    assert ("เครื่อง skn-web01.doh.go.th ไม่ได้ทดสอบกู้คืนข้อมูลในเดือนนี้ (ไม่ได้ดำเนินการ) "
            "จึงยังไม่อาจยืนยันได้ว่ากู้คืนได้") in text
    for hostname in ("skn-db01.doh.go.th", "skn-web01.doh.go.th"):
        sentence = text.split(f"เครื่อง {hostname}")[1].split("เครื่อง ")[0]
        assert "ยืนยันได้ว่ากู้คืนได้จริง" not in sentence and "ทดสอบกู้คืนข้อมูลสำเร็จเมื่อ" not in sentence


def test_one_email_per_opted_in_unit_and_month_in_thai_copied_to_the_it_centre(lab) -> None:
    eng, smtp = lab
    assert send_monthly_reports(NOW) == [SAKON]
    assert send_monthly_reports(NOW.replace(day=20)) == [], "the same month again (another run): nothing more"
    assert len(smtp.handler.messages) == 1
    recipients, raw = smtp.handler.messages[0]
    assert sorted(recipients) == sorted([UNIT["email"], ORG["it_centre_email"]])
    # Highway Office 1's server was drilled too, but the unit did not ask: the outbox holds one notice only.
    assert [json.loads(r["recipients"]) for r in store.outbox_rows(eng)] == [[UNIT["email"], ORG["it_centre_email"]]]
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == f"[SB-8-7] รายงานผลการทดสอบกู้คืนข้อมูลประจำเดือนมีนาคม 2570 ({SAKON})"
    # RFC 2047: the space between encoded words is not the name's (the legacy decoder gets that right).
    legacy = message_from_bytes(raw)
    assert str(make_header(decode_header(legacy["To"]))) == f"{UNIT['name']} <{UNIT['email']}>"
    assert ORG["it_centre_email"] in msg["Cc"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith(f"เรียน {UNIT['name']}")
    for part in (text, html):
        assert ("ตามที่แขวงทางหลวงสกลนครที่ 1 ได้ฝากเครื่อง Server ไว้ให้ศูนย์เทคโนโลยีสารสนเทศ กรมทางหลวง "
                "สำรองข้อมูล") in part
        assert "ทดสอบกู้คืนข้อมูลสำเร็จเมื่อวันที่ 1 มีนาคม 2570" in part
        assert "การทดสอบกู้คืนข้อมูลประจำเดือนนี้ไม่ผ่าน" in part
        assert "hw1-hrdb01" not in part
    assert "จึงเรียนมาเพื่อโปรดทราบ และใช้เป็นหลักฐานประกอบการตรวจสอบ" in text
    # April is another month: its report goes out.
    assert send_monthly_reports(datetime(2027, 4, 1, 12, 30, tzinfo=UTC)) == [SAKON]
    assert len(smtp.handler.messages) == 2


def test_the_run_is_failed_by_the_report_task_when_a_drill_of_the_run_did_not_pass(lab) -> None:
    eng, _ = lab
    policies = active_policies(eng)
    # The scheduled run of 1 March: skn-fs01 failed then passed (a retry in the same run), skn-db01 failed.
    rows = [dict(r, run_id="scheduled__m") if r["started_at"].month == 3 else r for r in drill_rows(eng)]
    assert drills_not_passed(rows, "scheduled__m", policies) == [
        "skn-db01.doh.go.th: failed", "skn-web01.doh.go.th: ไม่มีผลการทดสอบ"]
    passed = [p for p in policies if p["server_id"] in ("skn-fs01", "hw1-hrdb01")]
    assert drills_not_passed(rows, "scheduled__m", passed) == []


@pytest.mark.parametrize(("entry", "refusal"), [
    ({"agency": SAKON, "name": "แขวงฯ"}, "drill_reports[1] (แขวงทางหลวงสกลนครที่ 1): no e-mail address"),
    ({"agency": "แขวงทางหลวงสกลนคร 1", "email": "x@doh.example.go.th"},
     "drill_reports[1] (แขวงทางหลวงสกลนคร 1): no server in the inventory"),
], ids=["no e-mail", "unknown agency"])
def test_the_organisation_file_refuses_a_report_with_no_email_or_an_unknown_agency(
        lab, tmp_path: Path, entry: dict, refusal: str) -> None:
    raw = json.loads((ROOT / "config" / "sb87.json").read_text(encoding="utf-8"))
    raw["drill_reports"] = [entry]
    (tmp_path / "sb87.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{re.escape(refusal)}"):
        organisation()
