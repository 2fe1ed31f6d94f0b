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
    """`24 พ.ย. 2569`, with `16:30` appended for a datetime (Bangkok time)."""
    v = _local(value)
    text = f"{v.day} {MONTHS_ABBR[v.month - 1]} {v.year + BE_OFFSET}"
    if isinstance(v, datetime):
        text += f" {v:%H:%M}"
    return text
