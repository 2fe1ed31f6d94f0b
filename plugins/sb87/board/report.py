"""The monthly report (issue 23, item 4): a calendar month of the service in numbers, as CSV and XLSX.

For one month of Bangkok's calendar: requests received (their run started in the month), and those
that ended in it — completed, rejected, failed (`sb87.board.data.outcome`); per step, of the steps
that ended in the month (the closing summary `sb87_step_summary`), the share finished within the
working-day limit and the median working days; servers protected (a policy active during the month),
and the share of server-days whose freshness checks found the backup fresh.

`report()` is pure; the readers (`step_summaries`, `freshness_checks`) live beside the board's in
`data.py`'s style, and the app serves `/api/report`, `/report.csv`, `/report.xlsx` (`?month=YYYY-MM`).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sb87 import steps
from sb87.backup import drill, freshness
from sb87.board import data
from sb87.records import store
from sb87.timekeeping.thai_dates import BE_OFFSET, MONTHS

BANGKOK = ZoneInfo("Asia/Bangkok")
MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$")
FRESH_STATES = {freshness.OK, freshness.NOT_YET_DUE}


class BadMonth(ValueError):
    """A month the report cannot be made for: 400, naming the field `month`."""


def parse_month(text: str, now: datetime) -> tuple[datetime, datetime]:
    """`2026-11` → the month's first instant and the next month's, in Bangkok. Malformed or in the future:
    `BadMonth`. A Buddhist-Era year (`2569-11`) is refused with a hint, not silently read as 2569 CE."""
    found = MONTH.match(text.strip())
    if not found:
        raise BadMonth("ต้องเป็นปี ค.ศ.-เดือน เช่น 2026-11 (YYYY-MM)")
    year, month = int(found["year"]), int(found["month"])
    if year > now.year + 100:
        raise BadMonth(f"ปี {year} ดูเป็นปี พ.ศ.: ใช้ปี ค.ศ. ({year - BE_OFFSET}-{month:02d})")
    start = datetime(year, month, 1, tzinfo=BANGKOK)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=BANGKOK)
    if start > now:
        raise BadMonth("เดือนนี้ยังไม่มาถึง (a month in the future)")
    return start, end


def month_thai(start: datetime) -> str:
    return f"{MONTHS[start.month - 1]} {start.year + BE_OFFSET}"


# ----------------------------------------------------------------------------- readers


def step_summaries(eng: Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Closing summaries of the steps that ended in [start, end)."""
    s = store.step_summary
    with eng.connect() as db:
        rows = db.execute(select(s).where(s.c.ended_at >= start.astimezone(UTC), s.c.ended_at < end.astimezone(UTC)))
        return [dict(r._mapping) for r in rows]


def freshness_checks(eng: Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    c = freshness.checks
    with eng.connect() as db:
        rows = db.execute(select(c.c.server_id, c.c.checked_at, c.c.state)
                          .where(c.c.checked_at >= start.astimezone(UTC), c.c.checked_at < end.astimezone(UTC)))
        return [dict(r._mapping) for r in rows]


def month_drills(eng: Engine, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The recoverability drills that finished in the month (`sb87.backup.drill`)."""
    d = drill.drills
    with eng.connect() as db:
        rows = db.execute(select(d.c.server_id, d.c.state, d.c.finished_at)
                          .where(d.c.finished_at >= start.astimezone(UTC), d.c.finished_at < end.astimezone(UTC)))
        return [dict(r._mapping) for r in rows]


# ----------------------------------------------------------------------------- numbers (pure)


def _local_day(when: datetime) -> date:
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return aware.astimezone(BANGKOK).date()


def _within(when: datetime | None, start: datetime, end: datetime) -> bool:
    if when is None:
        return False
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    return start <= aware < end


def report(start: datetime, end: datetime, runs: Iterable[data.RunRecord], summaries: Sequence[Mapping[str, Any]],
           policies: Iterable[Mapping[str, Any]], checks: Iterable[Mapping[str, Any]],
           drills: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The month's numbers from the records (see the module doc)."""
    drills = [d for d in drills if _within(d["finished_at"], start, end)]
    runs = list(runs)
    ended = [data.outcome(r)[0] for r in runs if r.state not in data.OPEN_RUN_STATES and _within(r.ended, start, end)]
    per_step = []
    for step in steps.limited_steps():
        mine = [s for s in summaries if s["step"] == step.key and s.get("met") in ("met", "missed", "failed")]
        used = [float(s["working_days_used"]) for s in mine if s.get("working_days_used") is not None]
        met = sum(1 for s in mine if s["met"] == "met")
        per_step.append({"step": step.number, "title": step.title, "finished": len(mine), "within_limit": met,
                         "share_within_limit": round(met / len(mine), 4) if mine else None,
                         "median_working_days": round(statistics.median(used), 3) if used else None})
    protected = sorted(p["server_id"] for p in policies if _aware(p["created_at"]) < end
                       and (p.get("active") or (p.get("removed_at") and _aware(p["removed_at"]) >= start)))
    days: dict[tuple[str, date], bool] = {}
    for c in checks:
        if c["server_id"] in protected and _within(c["checked_at"], start, end):
            key = (c["server_id"], _local_day(c["checked_at"]))
            days[key] = days.get(key, False) or c["state"] in FRESH_STATES
    fresh = sum(days.values())
    return {
        "month": f"{start.year}-{start.month:02d}",
        "month_thai": month_thai(start),
        "received": sum(1 for r in runs if _within(r.started, start, end)),
        "completed": ended.count("completed"),
        "rejected": ended.count("rejected"),
        "failed": ended.count("failed"),
        "steps": per_step,
        "servers_protected": len(protected),
        "server_days_checked": len(days),
        "server_days_fresh": fresh,
        "fresh_day_share": round(fresh / len(days), 4) if days else None,
        "drills_run": len(drills),
        "drills_passed": sum(1 for d in drills if d["state"] == "passed"),
    }


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# ----------------------------------------------------------------------------- files


def table(numbers: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The report as rows (Thai label, English key, value): what the CSV and the XLSX hold."""
    rows: list[tuple[str, str, Any]] = [
        ("เดือน", "month", numbers["month_thai"]),
        ("คำขอที่รับ", "received", numbers["received"]),
        ("ดำเนินการเสร็จสิ้น", "completed", numbers["completed"]),
        ("ไม่อนุมัติ", "rejected", numbers["rejected"]),
        ("ล้มเหลว", "failed", numbers["failed"]),
    ]
    for s in numbers["steps"]:
        rows += [(f"{s['title']}: เสร็จในเดือน", f"step{s['step']}_finished", s["finished"]),
                 (f"{s['title']}: ทันกำหนด (สัดส่วน)", f"step{s['step']}_share_within_limit", s["share_within_limit"]),
                 (f"{s['title']}: มัธยฐานวันทำการ", f"step{s['step']}_median_working_days", s["median_working_days"])]
    rows += [("เครื่องที่ได้รับการสำรองข้อมูล", "servers_protected", numbers["servers_protected"]),
             ("สัดส่วนวันที่ข้อมูลสำรองเป็นปัจจุบัน", "fresh_day_share", numbers["fresh_day_share"]),
             ("การทดสอบกู้คืน (ครั้ง)", "drills_run", numbers["drills_run"]),
             ("การทดสอบกู้คืนที่ผ่าน (ครั้ง)", "drills_passed", numbers["drills_passed"])]
    return rows


def as_csv(numbers: Mapping[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark: spreadsheet programs then read the Thai labels correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["รายการ", "key", "value"])
    for label, key, value in table(numbers):
        writer.writerow([label, key, "" if value is None else value])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(numbers: Mapping[str, Any]) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("รายงานประจำเดือน")
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, ["รายการ", "key", "value"], bold)
    for i, (label, key, value) in enumerate(table(numbers), start=1):
        sheet.write(i, 0, label)
        sheet.write(i, 1, key)
        if value is None:
            sheet.write_blank(i, 2, None)
        else:
            sheet.write(i, 2, value)
    sheet.set_column(0, 0, 60)
    sheet.set_column(1, 1, 32)
    book.close()
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the memo


REPORT_SUBJECT = "รายงานผลการให้บริการฝากเครื่อง Server ประจำเดือน"


def _share(value: float | None) -> str:
    return "-" if value is None else f"ร้อยละ {value * 100:.1f}"


def memo_fields(numbers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The memo's aligned list: the month's counts, then each step's timeliness."""
    fields = [("คำขอที่รับในเดือน", f"{numbers['received']} คำขอ"),
              ("ดำเนินการเสร็จสิ้น", f"{numbers['completed']} คำขอ"),
              ("ไม่อนุมัติ", f"{numbers['rejected']} คำขอ"),
              ("ล้มเหลว", f"{numbers['failed']} คำขอ")]
    for s in numbers["steps"]:
        if s["finished"]:
            median = f"{s['median_working_days']:.2f}" if s["median_working_days"] is not None else "-"
            fields.append((f"ขั้นตอนที่ {s['step']}",
                           f"ทันกำหนด {s['within_limit']} จาก {s['finished']} ({_share(s['share_within_limit'])}) "
                           f"มัธยฐาน {median} วันทำการ"))
    fields += [("เครื่องที่ได้รับการสำรองข้อมูล", f"{numbers['servers_protected']} เครื่อง"),
               ("วันที่ข้อมูลสำรองเป็นปัจจุบัน", _share(numbers["fresh_day_share"])),
               ("การทดสอบกู้คืน", f"ผ่าน {numbers['drills_passed']} จาก {numbers['drills_run']} ครั้ง")]
    return fields


def memo_pdf(numbers: Mapping[str, Any], when: datetime, eng: Engine) -> Any:
    """The month's report as the group's memo to the IT Centre Director (the same standards as the
    server-details memo: the group's unit, letter code and own register number; signed by the roster's
    first group/division director). The number is taken once per month: a re-run keeps it."""
    from sb87.documents.filing import GROUP_OUT_KIND, _render, request_folder, roster_signatory
    from sb87.documents.memo import Memo, default_emblem, organisation_names, render_memo_body
    from sb87.settings import organisation

    org = organisation()
    raw = org.raw["organisation"]
    subject = f"{REPORT_SUBJECT}{numbers['month_thai']}"
    key = f"monthly-report-{numbers['month']}"
    entry = store.register_document(eng, key, GROUP_OUT_KIND, subject, when)
    signers = org.with_role("group_director")
    signer = roster_signatory(signers[0].id if signers else "", "", org["group_director_position"])
    body = render_memo_body("generic.txt.j2", {
        "paragraphs": [f"กลุ่มฯ ขอรายงานผลการให้บริการฝากเครื่อง Server (SB-8-7) ประจำเดือน{numbers['month_thai']} "
                       "ตามระยะเวลาที่กำหนดเป็นวันทำการ ดังนี้"],
        "fields": memo_fields(numbers),
        "items": [],
        "closing": "รายละเอียดตามแผนภูมิท้ายบันทึกนี้ และไฟล์ CSV และ XLSX ที่แนบ จึงเรียนมาเพื่อโปรดทราบ",
    })
    unit = raw.get("group_unit") or f"{org['unit']} {org['department']}"
    memo = Memo(unit=unit, unit_phone=raw.get("group_unit_phone") or org["unit_phone"],
                number=f"{raw.get('group_letter_code') or org['letter_code']}/{entry['number']}", date=when,
                subject=subject, addressee=org["director_position"], body=body, emblem_path=default_emblem(),
                author=unit, keep_together=organisation_names(), **signer)
    path = _render(memo, request_folder(key) / f"{key}.pdf")
    path.write_bytes(_with_page(path.read_bytes(), chart_pdf(numbers)))
    return path


CHART_WIDTH_MM = 90.0


def chart_pdf(numbers: Mapping[str, Any]) -> bytes:
    """A page after the memo: per step, a bar of the share finished within its working-day limit.

    Drawn with the memo's own page class (`sb87.documents.pdf_layout`), whose text carries the Thai
    as written (`/ActualText`), so that a reader copies or searches the chart's labels correctly."""
    from sb87.documents.pdf_layout import _MemoPDF, font_paths
    from sb87.documents.pdf_text import close_tounicode_gaps

    pdf = _MemoPDF(font_paths())
    pdf.add_page()
    left, bar_x = pdf.l_margin, pdf.l_margin + 28
    pdf.baseline = 30
    pdf.put(left, f"แผนภูมิ: สัดส่วนขั้นตอนที่เสร็จทันกำหนด ประจำเดือน{numbers['month_thai']}", bold=True)
    pdf.baseline += 6
    for s in numbers["steps"]:
        pdf.baseline += 10
        pdf.put(left, f"ขั้นตอนที่ {s['step']}")
        pdf.set_fill_color(226, 232, 240)
        pdf.rect(bar_x, pdf.baseline - 5, CHART_WIDTH_MM, 6, style="F")
        if s["share_within_limit"] is not None:
            pdf.set_fill_color(47, 133, 90)
            pdf.rect(bar_x, pdf.baseline - 5, CHART_WIDTH_MM * s["share_within_limit"], 6, style="F")
            label = f"{s['share_within_limit'] * 100:.1f}% ({s['within_limit']}/{s['finished']})"
        else:
            label = "ไม่มีขั้นตอนที่เสร็จ"
        pdf.put(bar_x + CHART_WIDTH_MM + 3, label)
    pdf.baseline += 14
    pdf.put(left, "แถบสีเขียว: สัดส่วนของขั้นตอนที่เสร็จภายในวันทำการที่กำหนด", size_pt=14)
    pdf.baseline += 7
    pdf.put(left, "ของขั้นตอนที่เสร็จในเดือนนี้ ขั้นตอนที่ล้มเหลวนับเป็นไม่ทันกำหนด", size_pt=14)
    return close_tounicode_gaps(bytes(pdf.output()))


def _with_page(first: bytes, extra: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(first)))
    for page in PdfReader(io.BytesIO(extra)).pages:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# ----------------------------------------------------------------------------- the scheduled sending


def first_working_day(year: int, month: int, cal: Any) -> date:
    """The month's first official working day (`sb87.timekeeping.workdays`): the day the report goes out."""
    day = date(year, month, 1)
    while not cal.is_working_day(day):
        day = date.fromordinal(day.toordinal() + 1)
    return day


def previous_month(now: datetime) -> str:
    """The month before `now`'s, in Bangkok (`YYYY-MM`)."""
    local = now.astimezone(BANGKOK)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year}-{month:02d}"


def send_monthly_report(month: str, now: datetime) -> dict[str, Any]:
    """Make the month's numbers, memo (PDF), CSV and XLSX and send them once: to the IT Centre Director,
    with the General Administration Division in copy (`organisation.admin_division_email`). Safe to
    retry: the memo keeps its register number and the outbox sends each month's notice once."""
    from sb87.notices.outbox import send_notice_once
    from sb87.settings import organisation, settings

    start, end = parse_month(month, now)
    eng = store.project_engine()
    numbers = report(start, end, data.airflow_runs_rest(start), step_summaries(eng, start, end),
                     list(data.server_facts(eng).policies.values()), freshness_checks(eng, start, end),
                     month_drills(eng, start, end))
    pdf = memo_pdf(numbers, now, eng)
    files = [pdf]
    for suffix, content in (("csv", as_csv(numbers)), ("xlsx", as_xlsx(numbers))):
        path = pdf.with_suffix(f".{suffix}")
        path.write_bytes(content)
        path.chmod(0o600)
        files.append(path)
    org = organisation()
    raw = org.raw["organisation"]
    to = [(p.name, p.email) for p in org.with_role("it_director")]
    cc = [(raw.get("admin_division_name", "ฝ่ายบริหารงานทั่วไป"), raw["admin_division_email"])]
    sent = send_notice_once(f"monthly-report-{numbers['month']}", "monthly_report",
                            {"numbers": numbers, "fields": memo_fields(numbers), "org": raw},
                            to=to, cc=cc, attachments=files, conn_id=settings().smtp_conn_id)
    return {"month": numbers["month"], "queued": sent, "files": [str(f) for f in files]}
