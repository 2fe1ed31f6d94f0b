"""What the DAG's Python steps do, kept apart from the DAG file so the DAG stays a readable outline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sb87.backends import parse_results
from sb87.settings import TEMPLATES_DIR, organisation
from sb87.thai_dates import bangkok_date

APPROVE = "อนุมัติ"
REJECT = "ไม่อนุมัติ"

BACKUP_GROUP = "backup_test"
FIRST_BACKUP_TASK = f"{BACKUP_GROUP}.readiness"
RESTORE_GROUP = "restore_file"
FIRST_RESTORE_TASK = f"{RESTORE_GROUP}.list_snapshots"
RESULT_TASK = "notify_result"
REJECTION_TASK = "notify_rejection"
WORK_FINISHED_TASK = "work_finished"


def hitl_body(name: str) -> str:
    """The Markdown body template of a decision (rendered by Airflow with the run's context)."""
    return (TEMPLATES_DIR / "hitl" / f"{name}.md.j2").read_text(encoding="utf-8")


def decision_record(hitl_output: Mapping[str, Any], services: list[str]) -> dict[str, Any]:
    """Who decided what, when, with which comment: the audit record of a human decision.

    Sub-units left empty by the director default to those the organisation file names for the
    requested services (the seed: backup → ผคน. ผมน. ผรน. ผปน.; restore → ผคน. ผฐน. ผมน.).
    """
    params = hitl_output.get("params_input") or {}
    by_id, by = organisation().who_answered(hitl_output)
    option = hitl_output["chosen_options"][0]
    responded_at = hitl_output.get("responded_at")
    return {
        "approved": option == APPROVE,
        "option": option,
        "reason": (params.get("reason") or "").strip(),
        "sub_units": list(params.get("sub_units") or organisation().default_sub_units(services)),
        "by": by,
        "by_id": by_id,
        "at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else str(responded_at),
    }


WAITING_FOR_EQUIPMENT = "ขั้นตอนที่ 5 รออุปกรณ์และเครื่องมือให้พร้อม"


def assignment_line(user_ids: list[str]) -> str:
    """The run note's line for step 4: the staff ordered to do the work, by name."""
    names = ", ".join(organisation().person(user_id).name for user_id in user_ids)
    return f"ขั้นตอนที่ 4 สั่งการให้ {names or '-'} ดำเนินการ"


def decision_note(decision: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    """The run note after the director's decision: who, when, what."""
    from sb87.request import request_summary
    from sb87.thai_dates import thai_date_short

    when = thai_date_short(decision["at"]) if decision["at"] else ""
    if not decision["approved"]:
        return f"{request_summary(request)}\nไม่อนุมัติ โดย {decision['by']} {when}: {decision['reason'] or '-'}"
    units = ", ".join(decision["sub_units"])
    return f"{request_summary(request)}\nอนุมัติ โดย {decision['by']} {when}; ผู้ดำเนินการ {units}"


def done_note(request: Mapping[str, Any], servers: list[dict[str, Any]], restored: Mapping[str, Any] | None,
              run_id: str) -> str:
    """The run note once the result has been sent: who did what, and every document of the request."""
    from sb87 import store
    from sb87.documents import request_documents
    from sb87.request import request_summary

    lines = [request_summary(request), assignment_line(store.assigned_staff(store.project_engine(), run_id)),
             "ขั้นตอนที่ 7 แจ้งผลแล้ว"]
    lines += [f"- {s['hostname']}: snapshot {s['snapshot']}, {s['files']} ไฟล์" for s in servers]
    if restored:
        lines.append(f"- Restore File: {restored['archive']} (SHA-256 {restored['sha256'][:16]}…)")
    lines += ["เอกสาร:", *(f"- {path}" for path in request_documents(run_id))]
    return "\n".join(lines)


def next_steps(decision: Mapping[str, Any]) -> list[str]:
    """Where the director's decision leads: coordination (step 3) on approval, else the rejection notice."""
    from sb87.coordination import details_task

    return [details_task(1)] if decision["approved"] else [REJECTION_TASK]


def work_steps(request: Mapping[str, Any]) -> list[str]:
    """The technical steps the requested services need, once staff are ordered to proceed (step 4)."""
    steps = [FIRST_BACKUP_TASK] if request.get("servers") else []
    if request.get("restore"):
        steps.append(FIRST_RESTORE_TASK)
    return steps


def requester(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(request["contact_name"], request["contact_email"])]


def it_centre_copy() -> list[tuple[str, str]]:
    org = organisation()
    return [(org["unit"], org["it_centre_email"])]


def memo_copies() -> list[tuple[str, str]]:
    """An outgoing memo is copied to the IT Centre and to General Administration, which files it."""
    org = organisation()
    return [*it_centre_copy(), ("ฝ่ายบริหารงานทั่วไป", org["admin_division_email"])]


def server_outcomes(
    request: Mapping[str, Any], backup_output: Any, restore_output: Any
) -> list[dict[str, Any]]:
    """Per server: what step 5 did, from the SB87_RESULT lines of the backup and restore tests."""
    backups = {r["server"]: r for r in parse_results(backup_output) if r.get("action") == "test_backup"}
    restores = {r["server"]: r for r in parse_results(restore_output) if r.get("action") == "test_restore"}
    outcomes = []
    for server in request.get("servers", []):
        host = server["hostname"]
        if host not in backups or host not in restores:
            raise RuntimeError(f"step 5 reported no backup/restore test result for {host}")
        summary = backups[host]["summary"]
        outcomes.append(
            {
                "hostname": host,
                "address": server["address"],
                "paths": server["paths"],
                "snapshot": summary["snapshot_id"],
                "files": summary["total_files_processed"],
                "bytes": summary["total_bytes_processed"],
                "sample_file": restores[host]["file"],
                "sample_sha256": restores[host]["sha256"],
            }
        )
    return outcomes


def readiness_report(output: str | bytes) -> dict[str, Any]:
    """The one `readiness` result of a readiness script's stdout."""
    [report] = [r for r in parse_results(output) if r.get("action") == "readiness"]
    return report


def chosen_snapshot(list_output: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot to restore from: the newest at or before the request's `as_of`."""
    from sb87.backends import choose_snapshot

    [listing] = [r for r in parse_results(list_output) if r.get("action") == "list_snapshots"]
    return choose_snapshot(listing["snapshots"], request["restore"]["as_of"])


def restore_outcome(request: Mapping[str, Any], package_output: Any, verify_output: Any) -> dict[str, Any] | None:
    """What step 6 delivered and verified, for the result notice (None when no restore was asked)."""
    if not request.get("restore"):
        return None
    [package] = [r for r in parse_results(package_output) if r.get("action") == "restore_file"]
    [verified] = [r for r in parse_results(verify_output) if r.get("action") == "verify_delivery"]
    if verified["sha256"] != package["sha256"]:
        raise RuntimeError("the verified restore file is not the one that was packaged")
    return {**package, "paths": request["restore"]["paths"], "as_of": request["restore"]["as_of"]}


def notice_context(request: Mapping[str, Any], decision: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    org = organisation()
    return {
        "request": request,
        "decision": decision,
        "org": org.raw["organisation"],
        "sub_units": [org.sub_unit_name(code) for code in decision["sub_units"]],
        "today": bangkok_date(),
        **extra,
    }


def outgoing_memo(run_id: str, kind: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Step 7's memo: an outgoing number from the register (kept on retry), then the PDF.

    Returns `{"number", "date", "path"}` for the e-mail that carries it.
    """
    from datetime import UTC, datetime

    from sb87 import store
    from sb87.documents import outgoing_memo_pdf

    now = datetime.now(UTC)
    entry = store.register_document(store.project_engine(), run_id, "out", context["request"]["subject"], now)
    # The number runs per Buddhist-Era year; the memo's date says which year it belongs to.
    path = outgoing_memo_pdf(run_id, kind, str(entry["number"]), entry["registered_at"], context)
    return {"number": f"{organisation()['letter_code']}/{entry['number']}", "date": entry["registered_at"],
            "path": path}


def send_memo_notice(run_id: str, kind: str, context: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Step 7's notice: the outgoing memo (`outgoing_memo`) attached to the `kind` e-mail to the
    requester, copied to the IT Centre and General Administration, sent once per run.

    Returns (whether this call sent it, the memo).
    """
    from sb87.notices import send_notice_once
    from sb87.settings import settings

    memo = outgoing_memo(run_id, kind, context)
    sent = send_notice_once(run_id, kind, {**context, "memo": memo}, attachments=[memo["path"]],
                            to=requester(context["request"]), cc=memo_copies(), conn_id=settings().smtp_conn_id)
    return sent, memo
