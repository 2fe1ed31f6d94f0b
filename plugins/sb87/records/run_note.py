"""The run note's prose: where a request stands, in Thai, for the operators watching the runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sb87 import documents, steps
from sb87.records import store
from sb87.settings import organisation
from sb87.timekeeping.thai_dates import thai_date_short

WAITING_FOR_EQUIPMENT = f"{steps.BACKUP_POLICY.title}: รออุปกรณ์และเครื่องมือให้พร้อม"


def request_summary(request: Mapping[str, Any]) -> str:
    """One Thai line for run notes and logs."""
    names = {"backup": "ใช้ระบบสำรองข้อมูล", "restore": "ขอ Restore File"}
    services = " และ ".join(names[s] for s in request.get("services", []))
    return f"{request['agency']} หนังสือที่ {request['memo_no']}: {services}"


def assignment_line(user_ids: list[str]) -> str:
    """The run note's line for step 4: the staff ordered to do the work, by name."""
    names = ", ".join(organisation().person(user_id).name for user_id in user_ids)
    return f"{steps.ASSIGNMENT.title}: สั่งการให้ {names or '-'} ดำเนินการ"


def decision_note(decision: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    """The run note after the director's decision: who, when, what."""
    when = thai_date_short(decision["at"]) if decision["at"] else ""
    by = f"{decision['by']} {decision['capacity']}" if decision.get("capacity") else decision["by"]
    if not decision["approved"]:
        return f"{request_summary(request)}\nไม่อนุมัติ โดย {by} {when}: {decision['reason'] or '-'}"
    units = ", ".join(decision["sub_units"])
    return f"{request_summary(request)}\nอนุมัติ โดย {by} {when}; ผู้ดำเนินการ {units}"


def done_note(request: Mapping[str, Any], servers: list[dict[str, Any]], restored: Mapping[str, Any] | None,
              run_id: str) -> str:
    """The run note once the result has been sent: who did what, and every document of the request."""
    lines = [request_summary(request), assignment_line(store.assigned_staff(store.project_engine(), run_id)),
             f"{steps.RESULT.title}: แจ้งผลแล้ว"]
    lines += [f"- {s['hostname']}: snapshot {s['snapshot']}, {s['files']} ไฟล์" for s in servers]
    if restored:
        if restored.get("folder"):
            lines.append(f"- กู้คืนลงเครื่องแล้ว: {restored['folder']} (manifest SHA-256 {restored['manifest_sha256']})")
        else:
            lines.append(f"- Restore File: {restored['archive']} (SHA-256 {restored['sha256']})")
    lines += ["เอกสาร:", *(f"- {path}" for path in documents.request_documents(run_id))]
    return "\n".join(lines)
