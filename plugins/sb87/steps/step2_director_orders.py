"""ขั้นตอนที่ 2 ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศสั่งการ — the IT Centre Director decides.

The director approves, or rejects with a reason, and picks the sub-units that take the work (the
seed: backup → ผคน. ผมน. ผรน. ผปน.; restore → ผคน. ผฐน. ผมน.). The answer is read back from Airflow's
human-in-the-loop record and checked (`sb87.people.decisions.verified_answer`) before anything else
happens. A rejection ends the request at once: every task of steps 3–6 is skipped in one go and only
the rejection memo (step 7) and the closing summary run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import TaskGroup, chain, task
from airflow.sdk.exceptions import DownstreamTasksSkipped

from sb87 import steps
from sb87.airflow_api import set_run_note
from sb87.people import forms
from sb87.people.decisions import Decision, DecisionNotVerified, hitl_body, subject, verified_answer
from sb87.records.run_note import decision_note
from sb87.settings import organisation


@task(task_display_name="บันทึกผลการพิจารณา", retries=2)
def record_decision(request: Mapping[str, Any], **context: Any) -> dict[str, Any]:
    """The director's answer as Airflow's human-in-the-loop record holds it, checked, for the audit:
    approved or not, why, which sub-units, by whom, when. Sub-units left empty default to those the
    organisation file names for the requested services."""
    ti, dag_run = context["ti"], context["dag_run"]
    answer = verified_answer(ti.dag_id, ti.run_id, steps.DIRECTOR_DECISION, steps.IT_DIRECTOR)
    reason = (answer["params"].get("reason") or "").strip()
    if answer["option"] == steps.REJECT and not reason:
        # The api-server plugin (sb87.intake_rules.api_messages) refuses this answer; reaching here means it
        # is not loaded: never send the requester a rejection without a reason.
        raise DecisionNotVerified(f"{steps.DIRECTOR_DECISION}: rejected without a reason (is the sb87 plugin loaded?)")
    decision = {
        "approved": answer["option"] == steps.APPROVE,
        "option": answer["option"],
        "reason": reason,
        "sub_units": list(answer["params"].get("sub_units") or organisation().default_sub_units(request["services"])),
        "by": answer["by"],
        "by_id": answer["by_id"],
        "at": answer["at"],
        # "" in the director's own post, else e.g. "รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ".
        "capacity": answer["capacity"],
    }
    set_run_note(dag_run.dag_id, dag_run.run_id, decision_note(decision, request))
    return decision


@task(task_display_name="ส่งต่อตามผลการพิจารณา", retries=0)
def route_decision(decision: Mapping[str, Any], **context: Any) -> None:
    """Approved → coordination (step 3) and the rejection memo is skipped. Rejected → every task of
    steps 3–6 and the result memo are skipped at once, not one level per scheduler pass, so the run
    ends as soon as the rejection memo is queued."""
    if decision["approved"]:
        raise DownstreamTasksSkipped(tasks=[steps.NOTIFY_REJECTION])
    task_ = context["task"]
    keep = {steps.NOTIFY_REJECTION, steps.CLOSE_TASK}
    raise DownstreamTasksSkipped(tasks=sorted(set(task_.get_flat_relative_ids(upstream=False)) - keep))


def director_orders(request: Any) -> tuple[TaskGroup, Any]:
    """Step 2's tasks; returns the step and the recorded decision (an XComArg)."""
    with TaskGroup(group_id="director_orders", prefix_group_id=False,
                   group_display_name=steps.DIRECTOR.title) as step:
        decide = Decision(
            task_id=steps.DIRECTOR_DECISION, task_display_name=steps.DIRECTOR.title, role=steps.IT_DIRECTOR,
            doc_md="The IT Centre Director approves or rejects the request and assigns the sub-units.",
            subject=subject("พิจารณาคำขอฝากเครื่อง Server ของ", steps.DIRECTOR.limit_key),
            body=hitl_body("director_decision"), options=[steps.APPROVE, steps.REJECT],
            params=forms.director_params(),
        )
        decision = record_decision(request)
        chain(decide, decision, route_decision(decision))
    return step, decision
