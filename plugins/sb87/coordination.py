"""Steps 3 and 4: the server-details document, its review rounds, and the order to proceed.

Step 3: the staff of the sub-units the IT Centre Director picked record the server-details
document (เอกสารระบุรายละเอียดการรับฝากเครื่อง Server) in a form; the group/division director
endorses it or sends it back with a reason, which opens the next round pre-filled with the last
entries. A DAG is acyclic, so the rounds are unrolled up to `MAX_ROUNDS`.
Step 4: the group/division director orders staff from the roster to carry the work out; they
become the assignees of the later steps (deadline warnings go to them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from sb87.settings import Person, organisation

GROUP = "coordination"
MAX_ROUNDS = 3
SUBMIT = "ส่งเอกสารให้ผู้อำนวยการกลุ่มฯ"
ENDORSE = "เห็นชอบ"
SEND_BACK = "ส่งกลับแก้ไข"
ORDER = "สั่งการให้ดำเนินการ"
DOCUMENT_TASK = f"{GROUP}.server_details_document"
ROUNDS_EXHAUSTED_TASK = f"{GROUP}.rounds_exhausted"
ASSIGN_TASK = "assign_staff"
ONE_LINE = r"^[^\r\n]*$"


def details_task(round_no: int) -> str:
    return f"{GROUP}.server_details_{round_no}"


def review_task(round_no: int) -> str:
    return f"{GROUP}.review_details_{round_no}"


def endorsed_task(round_no: int) -> str:
    return f"{GROUP}.endorsed_{round_no}"


def _text(title: str, default: str = "", max_length: int = 200, **extra: Any) -> Param:
    return Param(default, type="string", maxLength=max_length, pattern=ONE_LINE, title=title, **extra)


def details_params() -> dict[str, Param]:
    """The form of the server-details document (pre-filled from the request when it opens).

    No name may repeat a request field: Airflow lets the run's conf override a task param of the
    same name, so `retention` here would receive the request's retention object.
    """
    return {
        "server_name": _text("ชื่อเครื่อง Server"),
        "address": _text("หมายเลข IP", max_length=100),
        "os": _text("ระบบปฏิบัติการ", max_length=100),
        "location": _text("ตำแหน่งติดตั้งในศูนย์ข้อมูล", description="เช่น ห้อง DC ชั้น 3 ตู้ R04 ช่อง U12"),
        "data_paths": Param("", type="string", maxLength=4000, title="ข้อมูลที่ต้องสำรอง / กู้คืน",
                            description="หนึ่งบรรทัดต่อหนึ่งตำแหน่ง"),
        "size_gb": Param(1, type="number", minimum=0, maximum=1_000_000, title="ขนาดข้อมูลโดยประมาณ (GB)"),
        "backup_window": _text("ช่วงเวลาสำรองข้อมูล", description="เช่น ทุกวัน 01:00-05:00 น."),
        "retention_period": _text("ระยะเวลาเก็บรักษา"),
        "unit_contacts": _text("ผู้ประสานงานของหน่วยงาน", max_length=500),
        "consultant_contacts": _text("ผู้ประสานงานทีมที่ปรึกษา", max_length=500),
        "notes": Param("", type="string", maxLength=2000, title="หมายเหตุ"),
    }


def review_params() -> dict[str, Param]:
    return {"reason": Param("", type="string", maxLength=1000, title="เหตุผล / สิ่งที่ต้องแก้ไข",
                            description="จำเป็นเมื่อส่งกลับแก้ไข: ข้อความนี้ส่งถึงเจ้าหน้าที่")}


def assign_params() -> dict[str, Param]:
    staff = organisation().with_role("staff")
    ids = [p.id for p in staff]
    return {
        "staff": Param(ids[:1], type="array", items={"type": "string", "enum": ids}, minItems=1, uniqueItems=True,
                       title="เจ้าหน้าที่ผู้ดำเนินการ", examples=ids,
                       values_display={p.id: p.name for p in staff}),
        "instructions": Param("", type="string", maxLength=1000, title="ข้อสั่งการ"),
    }


def _director_sub_units(ti: Any, request: Mapping[str, Any]) -> list[str]:
    answer = ti.xcom_pull(task_ids="director_decision") or {}
    chosen = (answer.get("params_input") or {}).get("sub_units") or []
    return list(chosen) or organisation().default_sub_units(request["services"])


def coordinating_staff(context: Mapping[str, Any]) -> list[Person]:
    """Staff of the sub-units the IT Centre Director picked (every staff member if none works there)."""
    ti = context["ti"]
    units = set(_director_sub_units(ti, ti.xcom_pull(task_ids="validate_request")))
    staff = organisation().with_role("staff")
    return [p for p in staff if units & set(p.sub_units)] or staff


def ordered_staff_default(context: Mapping[str, Any]) -> dict[str, Any]:
    """Step 4's form starts with the staff who recorded the document."""
    who = endorsed_details(context["ti"])["recorded_by_id"]
    staff_ids = {p.id for p in organisation().with_role("staff")}
    return {"staff": [who]} if who in staff_ids else {}


def details_prefill(round_no: int):
    """Round 1 starts from the request; a later round from what was sent back."""

    def prefill(context: Mapping[str, Any]) -> dict[str, Any]:
        ti = context["ti"]
        if round_no > 1:
            previous = ti.xcom_pull(task_ids=details_task(round_no - 1)) or {}
            return dict(previous.get("params_input") or {})
        return from_request(ti.xcom_pull(task_ids="validate_request"))

    return prefill


def from_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The document's fields as far as the request memo states them."""
    from sb87.notices import macros

    servers = request.get("servers") or []
    restore = request.get("restore") or {}
    first = servers[0] if servers else {"hostname": restore.get("hostname", ""), "address": "", "os": ""}
    paths = [p for s in servers for p in s["paths"]] or list(restore.get("paths", []))
    return {
        "server_name": ", ".join(s["hostname"] for s in servers) or first["hostname"],
        "address": ", ".join(s["address"] for s in servers) or first.get("address", ""),
        "os": first.get("os", ""),
        "data_paths": "\n".join(paths),
        "size_gb": sum(s.get("size_gb", 0) for s in servers),
        "backup_window": request.get("schedule", ""),
        "retention_period": str(macros().retention_th(request["retention"])) if request.get("retention") else "",
        "unit_contacts": f"{request['contact_name']} {request['contact_phone']} {request['contact_email']}",
    }


def review_answers(ti: Any) -> list[dict[str, Any]]:
    """Each review round that was answered, in order: round, option, reason, by whom."""
    rounds = []
    for n in range(1, MAX_ROUNDS + 1):
        answer = ti.xcom_pull(task_ids=review_task(n), key="answer")
        if not answer:
            break
        by_id, by = organisation().who_answered(answer)
        rounds.append({"round": n, "option": answer["chosen_options"][0],
                       "reason": ((answer.get("params_input") or {}).get("reason") or "").strip(),
                       "by": by, "by_id": by_id})
    return rounds


def endorsed_details(ti: Any) -> dict[str, Any]:
    """The document as endorsed: the fields of the endorsed round, who recorded and who endorsed it."""
    reviews = review_answers(ti)
    endorsed = next((r for r in reviews if r["option"] == ENDORSE), None)
    if endorsed is None:
        raise LookupError("no round of the server-details document was endorsed")
    entry = ti.xcom_pull(task_ids=details_task(endorsed["round"]))
    recorded_by_id, recorded_by = organisation().who_answered(entry)
    return {"fields": dict(entry["params_input"]), "round": endorsed["round"], "reviews": reviews,
            "recorded_by": recorded_by, "recorded_by_id": recorded_by_id,
            "endorsed_by": endorsed["by"], "endorsed_by_id": endorsed["by_id"]}


def sent_back_reason(ti: Any, round_no: int) -> str:
    """Why round `round_no - 1` was sent back (shown in the next round's form)."""
    reviews = review_answers(ti)
    return reviews[round_no - 2]["reason"] if round_no > 1 and len(reviews) >= round_no - 1 else ""
