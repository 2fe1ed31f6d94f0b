"""ขั้นตอนที่ 3 ส่งเจ้าหน้าที่ประสานงานกับหน่วยงานผู้ร้องขอและทีมที่ปรึกษา — coordinate, and record the
server-details document (เอกสารระบุรายละเอียดการรับฝากเครื่อง Server).

The staff of the sub-units the IT Centre Director picked record the document in a form; the
group/division director endorses it or sends it back with a reason, which opens the next round
pre-filled with the last entries. A DAG is acyclic, so the rounds are unrolled up to
`steps.MAX_ROUNDS`; after the last send-back the request ends. The endorsed document becomes the
group's own memo (PDF).

Every answer is read back with `decisions.verified_answer`, never from a task's XCom.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TaskGroup, chain, task
from airflow.sdk.exceptions import AirflowFailException

from sb87 import documents, steps
from sb87.airflow_api import append_run_note
from sb87.notices.messages import macros
from sb87.people import forms
from sb87.people.decisions import BranchDecision, Decision, DecisionNotVerified, hitl_body, subject, verified_answer
from sb87.settings import Person, organisation


def coordinating_staff(context: Mapping[str, Any]) -> list[Person]:
    """Staff of the sub-units the IT Centre Director picked (every staff member if none works there)."""
    decision = context["ti"].xcom_pull(task_ids=steps.DECISION_RECORD)
    units = set(decision["sub_units"])
    staff = organisation().with_role(steps.STAFF)
    return [p for p in staff if units & set(p.sub_units)] or staff


def _answer(context: Mapping[str, Any], task_id: str, role: str) -> dict[str, Any]:
    ti = context["ti"]
    return verified_answer(ti.dag_id, ti.run_id, task_id, role)


def recorded_fields(context: Mapping[str, Any], round_no: int) -> dict[str, Any]:
    """The whole document as round `round_no` recorded it.

    Airflow keeps only the fields a client sent; the form showed the rest pre-filled (the request,
    or the round before), so the document is rebuilt the same way. The fields the policy is built
    from (`forms.POLICY_FIELDS`) are the request's, whatever any record says.
    """
    request = from_request(context["ti"].xcom_pull(task_ids=steps.VALIDATE))
    fields = {key: param.value for key, param in forms.details_params().items()}
    fields.update(recorded_fields(context, round_no - 1) if round_no > 1 else request)
    fields.update(_answer(context, steps.details_task(round_no), steps.STAFF)["params"])
    fields.update({key: request[key] for key in forms.POLICY_FIELDS})
    return fields


def details_prefill(round_no: int) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Round 1's form starts from the request; a later round's from what was sent back."""

    def prefill(context: Mapping[str, Any]) -> dict[str, Any]:
        before = recorded_fields(context, round_no - 1) if round_no > 1 else from_request(
            context["ti"].xcom_pull(task_ids=steps.VALIDATE))
        return {key: before[key] for key in forms.details_params() if key in before}

    return prefill


def details_extras(round_no: int) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """What the round's form shows besides the request: the fields the policy is built from (read-only),
    and why the last round was sent back."""

    def extras(context: Mapping[str, Any]) -> dict[str, Any]:
        document = from_request(context["ti"].xcom_pull(task_ids=steps.VALIDATE))
        sent_back = None
        if round_no > 1:
            review = _answer(context, steps.review_task(round_no - 1), steps.GROUP_DIRECTOR)
            sent_back = {"by": review["by"], "reason": (review["params"].get("reason") or "").strip()}
            if not sent_back["reason"]:
                raise DecisionNotVerified(f"{steps.review_task(round_no - 1)}: sent back without saying why")
        return {"round_no": round_no, "sent_back": sent_back,
                "policy": {key: document[key] for key in forms.POLICY_FIELDS}}

    return extras


def review_extras(round_no: int) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The review shows the document as this round recorded it."""

    def extras(context: Mapping[str, Any]) -> dict[str, Any]:
        by = _answer(context, steps.details_task(round_no), steps.STAFF)["by"]
        return {"round_no": round_no, "last_round": round_no == steps.MAX_ROUNDS,
                "entry": {"params_input": recorded_fields(context, round_no), "by": by}}

    return extras


def from_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The document's fields as far as the request memo states them."""

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


def endorsed_details(context: Mapping[str, Any]) -> dict[str, Any]:
    """The document as endorsed: the endorsed round's fields, who recorded it and who endorsed it.

    Walks the rounds through Airflow's records: each review up to the endorsement must have been
    answered by the group/division director, each document by an assigned staff member.
    """
    reviews = []
    for n in range(1, steps.MAX_ROUNDS + 1):
        review = _answer(context, steps.review_task(n), steps.GROUP_DIRECTOR)
        reviews.append({"round": n, "option": review["option"], "by": review["by"], "by_id": review["by_id"],
                        "capacity": review["capacity"], "reason": (review["params"].get("reason") or "").strip()})
        if review["option"] == steps.ENDORSE:
            entry = _answer(context, steps.details_task(n), steps.STAFF)
            return {"fields": recorded_fields(context, n), "round": n, "reviews": reviews,
                    "recorded_by": entry["by"], "recorded_by_id": entry["by_id"],
                    "recorded_by_capacity": entry["capacity"],
                    "endorsed_by": review["by"], "endorsed_by_id": review["by_id"],
                    "endorsed_by_capacity": review["capacity"]}
    raise LookupError("no round of the server-details document was endorsed")


@task(task_id=steps.local_id(steps.DOCUMENT), task_display_name="จัดทำเอกสารระบุรายละเอียด (PDF)", retries=2)
def server_details_document(request: Mapping[str, Any], receipt: str, **context: Any) -> dict[str, Any]:
    """Step 3's end: the endorsed document (read from Airflow's records of every round) as a PDF in the
    request's folder, named in the run note."""
    dag_run = context["dag_run"]
    endorsed = endorsed_details(context)
    path = documents.server_details_pdf(dag_run.run_id, request, receipt, endorsed, datetime.now(UTC))
    append_run_note(dag_run.dag_id, dag_run.run_id,
                    f"{steps.COORDINATION.title}: เห็นชอบโดย {endorsed['endorsed_by']}: {path}")
    return {"path": str(path), "round": endorsed["round"], "endorsed_by": endorsed["endorsed_by"],
            "recorded_by_id": endorsed["recorded_by_id"]}


@task(task_id=steps.local_id(steps.ROUNDS_EXHAUSTED), task_display_name="ส่งกลับครบจำนวนรอบ ยุติคำขอ", retries=0)
def rounds_exhausted() -> None:
    """The document was sent back in every round: the request stops here and must be filed again."""
    raise AirflowFailException(f"the server-details document was sent back {steps.MAX_ROUNDS} times; "
                               "the request ends here (file a new request once the details are agreed)")


def _round(n: int) -> tuple[Decision, BranchDecision, EmptyOperator]:
    """Round n of step 3 (a DAG is acyclic, so the rounds are unrolled): staff record the document, the
    group/division director endorses it (→ `endorsed_n`) or sends it back (→ the next round).
    """
    details = Decision(
        task_id=steps.local_id(steps.details_task(n)), task_display_name=f"บันทึกเอกสารระบุรายละเอียด (รอบที่ {n})",
        doc_md="Staff of the sub-units the director picked record the server-details document.",
        role=steps.STAFF, assignees=coordinating_staff, prefill=details_prefill(n),
        extras=details_extras(n), options=[steps.SUBMIT], params=forms.details_params(),
        subject=subject("บันทึกเอกสารระบุรายละเอียดการรับฝากเครื่อง Server ของ", steps.COORDINATION.limit_key),
        body=hitl_body("server_details"),
    )
    review = BranchDecision(
        task_id=steps.local_id(steps.review_task(n)), task_display_name=f"ผู้อำนวยการกลุ่มฯ ตรวจเอกสาร (รอบที่ {n})",
        doc_md="The group/division director endorses the document or sends it back with a reason.",
        role=steps.GROUP_DIRECTOR, extras=review_extras(n), params=forms.review_params(),
        options=[steps.ENDORSE, steps.SEND_BACK],
        options_mapping={steps.ENDORSE: steps.endorsed_task(n),
                         steps.SEND_BACK: steps.details_task(n + 1) if n < steps.MAX_ROUNDS
                         else steps.ROUNDS_EXHAUSTED},
        subject=subject("ตรวจเอกสารระบุรายละเอียดการรับฝากเครื่อง Server ของ", steps.COORDINATION.limit_key),
        body=hitl_body("review_details"),
    )
    accepted = EmptyOperator(task_id=steps.local_id(steps.endorsed_task(n)),
                             task_display_name=f"เห็นชอบเอกสาร (รอบที่ {n})",
                             doc_md="Reached when this round's document is endorsed.")
    return details, review, accepted


def coordinate(request: Any, receipt: Any) -> TaskGroup:
    """Step 3's task group: the rounds, the join of the endorsed ones, the document as a PDF."""
    with TaskGroup(group_id=steps.COORDINATION.group, group_display_name=steps.COORDINATION.title) as step:
        rounds = [_round(n) for n in range(1, steps.MAX_ROUNDS + 1)]
        sent_back_after = [details for details, _, _ in rounds[1:]] + [rounds_exhausted()]
        for (details, review, endorsed), after in zip(rounds, sent_back_after, strict=True):
            chain(details, review, [endorsed, after])
        details_endorsed = EmptyOperator(
            task_id=steps.local_id(steps.DETAILS_ENDORSED), task_display_name="เอกสารได้รับความเห็นชอบ",
            trigger_rule="none_failed_min_one_success",
            doc_md="Joins the rounds: succeeds once any round's document is endorsed.")
        chain([endorsed for _, _, endorsed in rounds], details_endorsed, server_details_document(request, receipt))
    return step
