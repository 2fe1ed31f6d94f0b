"""Who a notice goes to: the requester, the IT Centre, and General Administration for outgoing memos."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sb87.settings import organisation


def requester(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The contact the request memo names."""
    return [(request["contact_name"], request["contact_email"])]


def it_centre_copy() -> list[tuple[str, str]]:
    org = organisation()
    return [(org["unit"], org["it_centre_email"])]


def memo_copies() -> list[tuple[str, str]]:
    """An outgoing memo is copied to the IT Centre and to General Administration, which files it."""
    return [*it_centre_copy(), ("ฝ่ายบริหารงานทั่วไป", organisation()["admin_division_email"])]
