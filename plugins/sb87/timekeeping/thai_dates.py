"""Thai official dates: Buddhist Era years and Thai month names (24 พฤศจิกายน 2569)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")
BE_OFFSET = 543

MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)  # fmt: skip
MONTHS_ABBR = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)  # fmt: skip


def _local(value: date | datetime | str) -> date | datetime:
    if isinstance(value, str):  # ISO 8601, as dates travel through XCom and DAG-run conf
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(BANGKOK)
    return value


def bangkok_date(instant: datetime | None = None) -> date:
    """The date in Thailand at `instant` (default: now). Servers keep UTC; from 17:00 UTC a UTC
    date would put yesterday on a Thai memo."""
    return (instant or datetime.now(BANGKOK)).astimezone(BANGKOK).date()


def buddhist_year(value: date | datetime | str) -> int:
    return _local(value).year + BE_OFFSET


def thai_date(value: date | datetime | str) -> str:
    """`24 พฤศจิกายน 2569`: the form used in the วันที่ line of an official memo."""
    v = _local(value)
    return f"{v.day} {MONTHS[v.month - 1]} {v.year + BE_OFFSET}"


def thai_date_short(value: date | datetime | str) -> str:
    """`24 พ.ย. 2569`, with `เวลา 16.30 น.` appended for a datetime (Bangkok time).

    Thai official style writes a time with a full stop and "น." (นาฬิกา), never "16:30".
    """
    v = _local(value)
    text = f"{v.day} {MONTHS_ABBR[v.month - 1]} {v.year + BE_OFFSET}"
    if isinstance(v, datetime):
        text += f" เวลา {thai_time(v)}"
    return text


# --------------------------------------------------------------------------------------------------
# Times, schedules and digits in Thai official style

THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
WEEKDAYS = {
    "mon": "วันจันทร์", "tue": "วันอังคาร", "wed": "วันพุธ", "thu": "วันพฤหัสบดี",
    "fri": "วันศุกร์", "sat": "วันเสาร์", "sun": "วันอาทิตย์",
}  # fmt: skip


def thai_digits(value: object) -> str:
    """`12` → `๑๒`: Thai numerals, for offices that number their memos' lists that way."""
    return str(value).translate(THAI_DIGITS)


def thai_time(value: str | datetime) -> str:
    """`01:00` or a datetime (Bangkok time) → `01.00 น.`: the Thai official way to write a time."""
    if isinstance(value, datetime):
        local = value.astimezone(BANGKOK) if value.tzinfo is not None else value
        hours, minutes = local.hour, local.minute
    else:
        hh, _, mm = value.strip().partition(":")
        hours, minutes = int(hh), int(mm)
    return f"{hours:02d}.{minutes:02d} น."


def thai_schedule(schedule: str) -> str:
    """The request's schedule in words.

    `daily 01:00` → `ทุกวัน เวลา 01.00 น.`; `weekly sun 02:30` → `ทุกวันอาทิตย์ เวลา 02.30 น.`;
    `monthly 1 03:00` → `ทุกวันที่ 1 ของเดือน เวลา 03.00 น.`. Anything else is returned as given
    (the request validator refuses other forms before a memo is written).
    """
    parts = schedule.split()
    try:
        if len(parts) == 2 and parts[0] == "daily":
            return f"ทุกวัน เวลา {thai_time(parts[1])}"
        if len(parts) == 3 and parts[0] == "weekly" and parts[1] in WEEKDAYS:
            return f"ทุก{WEEKDAYS[parts[1]]} เวลา {thai_time(parts[2])}"
        if len(parts) == 3 and parts[0] == "monthly" and parts[1].isdigit():
            return f"ทุกวันที่ {int(parts[1])} ของเดือน เวลา {thai_time(parts[2])}"
    except ValueError:
        pass
    return schedule


def thai_datetime(value: date | datetime | str) -> str:
    """`24 พฤศจิกายน 2569 เวลา 10.30 น.` for a datetime (Bangkok time); the date alone for a date."""
    v = _local(value)
    if isinstance(v, datetime):
        return f"{thai_date(v)} เวลา {thai_time(v)}"
    return thai_date(v)
