"""Notices render in Thai with Buddhist-Era dates and survive MIME encoding intact."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from sb87.notices.messages import build_message, render_notice

REQUEST = {
    "memo_no": "ทล 0601/1234",
    "memo_date": "2026-11-20",
    "subject": "ขอใช้บริการสำรองข้อมูลเครื่องแม่ข่าย",
    "agency": "แขวงทางหลวงสกลนครที่ 1",
    "contact_name": "สมหญิง ตั้งใจ",
    "contact_email": "somying@doh.example.go.th",
    "retention": {"daily": 7, "weekly": 4, "monthly": 6},
    "schedule": "daily 01:00",
}
DECISION = {"by": "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ", "at": "2026-11-24T03:30:00+00:00", "reason": ""}
ORG = {"unit": "ศูนย์เทคโนโลยีสารสนเทศ", "department": "กรมทางหลวง", "unit_phone": "0 2354 6668"}


def _context(**extra):
    extra.setdefault("restored", None)
    return {"request": REQUEST, "decision": DECISION, "org": ORG, "sub_units": ["ผคน."], "today": "2026-11-24",
            **extra}


def test_result_notice_in_thai_with_buddhist_era() -> None:
    server = {"hostname": "fileserver01", "address": "10.0.0.5", "paths": ["/srv/ข้อมูล กองทะเบียน"],
              "snapshot": "037db6c2", "files": 2, "bytes": 3 * 1048576, "sample_file": "/srv/a b.txt",
              "sample_sha256": "ab" * 32}
    notice = render_notice("result", _context(servers=[server]))
    assert "ทล 0601/1234" in notice.subject and "\n" not in notice.subject
    for text in (notice.text, notice.html):
        assert "20 พฤศจิกายน 2569" in text  # memo date
        assert "24 พฤศจิกายน 2569" in text  # date of the work
        assert "037db6c2" in text and "/srv/ข้อมูล กองทะเบียน" in text
        assert "รายวัน 7 ชุด รายสัปดาห์ 4 ชุด รายเดือน 6 ชุด" in text
        assert "3.00 MiB" in text
    # Decision time in Bangkok (03:30 UTC), however the template words the time.
    assert re.search(r"24 พ\.ย\. 2569 (เวลา )?10[.:]30", notice.text)


def test_html_escapes_request_text() -> None:
    notice = render_notice("rejection", _context(decision={**DECISION, "reason": "<script>x</script>"}))
    assert "<script>" not in notice.html and "&lt;script&gt;" in notice.html
    assert "<script>x</script>" in notice.text


def test_message_round_trip_keeps_thai() -> None:
    notice = render_notice("rejection", _context())
    msg = build_message(
        notice,
        sender="itc@doh.example.go.th",
        to=[(REQUEST["contact_name"], REQUEST["contact_email"])],
        cc=[("ศูนย์เทคโนโลยีสารสนเทศ", "itc@doh.example.go.th")],
    )
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Subject"] == notice.subject
    assert parsed["To"].addresses[0].display_name == "สมหญิง ตั้งใจ"
    assert parsed["To"].addresses[0].addr_spec == "somying@doh.example.go.th"
    assert parsed.get_body(("plain",)).get_content() == notice.text
    assert "ไม่อนุมัติ" in parsed.get_body(("html",)).get_content()


def test_memo_date_is_the_date_in_bangkok_not_on_the_server() -> None:
    """At 18:00 UTC on 24 November it is already 25 November in Thailand: the memo says 25."""
    from datetime import UTC, datetime

    from sb87.timekeeping.thai_dates import bangkok_date, thai_date

    evening_utc = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    assert thai_date(bangkok_date(evening_utc)) == "25 พฤศจิกายน 2569"
    assert thai_date(bangkok_date(datetime(2026, 11, 24, 16, 59, tzinfo=UTC))) == "24 พฤศจิกายน 2569"


FAILURE = {
    "request": {"agency": REQUEST["agency"], "memo_no": REQUEST["memo_no"], "subject": REQUEST["subject"]},
    "step": "ขั้นตอนที่ 5 สร้าง Policy และทดสอบการสำรองข้อมูล",
    "error": "เชื่อมต่อเครื่องสำรองข้อมูลไม่ได้ (SSH timeout)\nTraceback (most recent call last):\n  File ...",
    "link": "http://127.0.0.1:8080/dags/sb87_server_backup_service/runs/manual__1?a=1&b=2",
    "run_id": "manual__1",
    "org": ORG,
}


def test_failure_alert_names_the_request_and_step_with_one_line_of_error_and_a_link() -> None:
    notice = render_notice("failure", FAILURE)
    assert notice.subject.startswith("[SB-8-7] งานล้มเหลว: ขั้นตอนที่ 5") and "ทล 0601/1234" in notice.subject
    for text in (notice.text, notice.html):
        assert "แขวงทางหลวงสกลนครที่ 1" in text and "manual__1" in text
        assert "เชื่อมต่อเครื่องสำรองข้อมูลไม่ได้ (SSH timeout)" in text
        assert "Traceback" not in text  # one line of the error, not the stack
    assert FAILURE["link"] in notice.text
    assert 'href="http://127.0.0.1:8080/dags/sb87_server_backup_service/runs/manual__1?a=1&amp;b=2"' in notice.html


def test_failure_alert_renders_for_a_request_that_never_validated() -> None:
    notice = render_notice("failure", {**FAILURE, "request": {}, "error": ""})
    assert "หนังสือที่ - (-)" in notice.subject and "\n" not in notice.subject


def test_refusal_report_lists_refused_and_delivered_addresses() -> None:
    context = {
        "notice": {"subject": "[SB-8-7] รับเรื่องแล้ว", "kind": "acknowledgement", "key": "acknowledgement",
                   "message_id": "<sb87.abc@doh.example.go.th>", "run_id": "manual__1", "created_at": None},
        "refused": [{"address": "gone@doh.example.go.th", "code": 550, "reply": "5.1.1 <x>: no such user"}],
        "delivered": ["somying@doh.example.go.th"],
        "org": ORG,
    }
    notice = render_notice("refused", context)
    assert notice.subject == "[SB-8-7] ส่งอีเมลไม่ถึงผู้รับ 1 ราย: [SB-8-7] รับเรื่องแล้ว"
    assert "gone@doh.example.go.th: 550 5.1.1 <x>: no such user" in notice.text
    assert "&lt;x&gt;" in notice.html and "somying@doh.example.go.th" in notice.html
