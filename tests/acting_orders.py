"""Orders for the organisation file's `acting.appointments`, as the tests write them (see `acting_roster`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


def director_acting_order(number: str, start: datetime, end: datetime) -> dict[str, Any]:
    """An order (in the organisation file's `acting.appointments`): the group director acts
    (รักษาราชการแทน) for the IT Centre Director from `start` to `end`."""
    bangkok = ZoneInfo("Asia/Bangkok")
    return {"acting": "group_director", "for": "it_director", "kind": "รักษาราชการแทน",
            "from": start.astimezone(bangkok).strftime("%Y-%m-%dT%H:%M:%S"),
            "to": end.astimezone(bangkok).strftime("%Y-%m-%dT%H:%M:%S"),
            "order": f"คำสั่งศูนย์เทคโนโลยีสารสนเทศ ที่ {number}"}
