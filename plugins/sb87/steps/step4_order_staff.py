"""ขั้นตอนที่ 4 สั่งการให้เจ้าหน้าที่ดำเนินการ — the group/division director orders staff to carry it out.

The ordered staff become the assignees of the later steps (deadline warnings go to them). The order is
read back from Airflow's record, kept in the project's database and named in the run note; then the
technical steps the requested services need run: step 5 for a backup, step 6 for a restore, or both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import TaskGroup, chain, task

from sb87 import steps
from sb87.airflow_api import append_run_note
from sb87.people import forms
from sb87.people.decisions import Decision, hitl_body, subject, verified_answer
from sb87.records import store
from sb87.records.run_note import assignment_line
from sb87.settings import organisation


def assignment_extras(context: Mapping[str, Any]) -> dict[str, Any]:
    """The decision's page shows the endorsed document (step 3's PDF)."""
    return {"document": context["ti"].xcom_pull(task_ids=steps.DOCUMENT)}


def ordered_staff_default(context: Mapping[str, Any]) -> dict[str, Any]:
    """Step 4's form starts with the staff who recorded the document."""
    who = context["ti"].xcom_pull(task_ids=steps.DOCUMENT)["recorded_by_id"]
    staff_ids = {p.id for p in organisation().with_role(steps.STAFF)}
    return {"staff": [who]} if who in staff_ids else {}


def work_steps(request: Mapping[str, Any]) -> list[str]:
    """The technical steps the requested services need, once staff are ordered to proceed."""
    chosen = [steps.FIRST_BACKUP_TASK] if request.get("servers") else []
    if request.get("restore"):
        chosen.append(steps.FIRST_RESTORE_TASK)
    return chosen


@task.branch(task_display_name="ส่งต่อตามบริการที่ขอ")
def route_services(request: Mapping[str, Any], **context: Any) -> list[str]:
    """Records who was ordered (from Airflow's record of step 4), then runs steps 5 and/or 6."""
    ti, dag_run = context["ti"], context["dag_run"]
    order = verified_answer(ti.dag_id, ti.run_id, steps.ASSIGN, steps.GROUP_DIRECTOR)
    staff = list(order["params"]["staff"])
    store.save_assignment(store.project_engine(), dag_run.run_id, staff, order["by_id"])
    append_run_note(dag_run.dag_id, dag_run.run_id, assignment_line(staff))
    return work_steps(request)


def order_staff(request: Any) -> TaskGroup:
    """Step 4's tasks: the order (a decision) and the routing to steps 5 and 6."""
    with TaskGroup(group_id="order_staff", prefix_group_id=False,
                   group_display_name=steps.ASSIGNMENT.title) as step:
        order = Decision(
            task_id=steps.ASSIGN, task_display_name=steps.ASSIGNMENT.title, role=steps.GROUP_DIRECTOR,
            doc_md="The group/division director orders staff from the roster; they get the later steps' warnings.",
            prefill=ordered_staff_default, extras=assignment_extras,
            subject=subject("สั่งการให้เจ้าหน้าที่ดำเนินการตามคำขอของ"), body=hitl_body("assign_staff"),
            options=[steps.ORDER], params=forms.assign_params(),
            # Step 3 ends either with the document or with its last send-back (which fails the run).
            trigger_rule="none_failed_min_one_success",
        )
        chain(order, route_services(request))
    return step
