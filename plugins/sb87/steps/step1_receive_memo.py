"""ขั้นตอนที่ 1 รับหนังสือเรื่องการร้องขอใช้บริการฯ — receive the request memo.

Staff file the memo's details in the trigger form. Every field is checked (host names, addresses,
paths, one-line texts, the inventory) and a bad field fails here, naming each field, before anything
reaches SSH or SMTP. The receipt number (เลขรับ) is taken in a task of its own, so an SMTP outage
delays the acknowledgement (it waits in the outbox), never the request. For a restore, a snapshot at
or before `as_of` must exist before the director is asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import TaskGroup, chain, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sb87 import notices, steps
from sb87.airflow_api import set_run_note
from sb87.backup.operator import run_on_backup_host, snapshot_as_of
from sb87.intake_rules.request import RequestInvalid
from sb87.intake_rules.request import validate_request as checked_request
from sb87.notices.recipients import it_centre_copy, requester
from sb87.records import request_record, store
from sb87.records.run_note import request_summary
from sb87.settings import organisation, registered_servers, settings
from sb87.timekeeping.deadlines import due_from_now, limits_from_config
from sb87.timekeeping.workdays import default_calendar


@task(task_display_name="ขั้นตอนที่ 1 รับหนังสือและตรวจสอบคำขอ", retries=0)  # a refused request stays refused
def validate_request(params: Mapping[str, Any] | None = None, dag_run: Any = None) -> dict[str, Any]:
    """Every field checked (host names, addresses, paths, one-line texts, the inventory); a bad
    field fails here, naming each field, before anything reaches SSH or SMTP."""
    try:
        request = checked_request(dict(params or {}), inventory=registered_servers())
    except RequestInvalid as err:
        set_run_note(dag_run.dag_id, dag_run.run_id, f"คำขอไม่ถูกต้อง ไม่ดำเนินการต่อ\n{err.errors}")
        raise AirflowFailException(str(err)) from err
    waiting = f"รอผู้อำนวยการศูนย์ฯ พิจารณา ({due_from_now(steps.DIRECTOR.limit_key)})"
    set_run_note(dag_run.dag_id, dag_run.run_id, f"{request_summary(request)}\n{waiting}")
    return request


@task(task_display_name="ขั้นตอนที่ 1 ลงทะเบียนรับ (เลขรับ)", retries=2)
def register_receipt(request: Mapping[str, Any], dag_run: Any = None) -> str:
    """The request as filed and its receipt number (เลขรับ) in the request's record and the document
    register; a retry keeps the same number."""
    eng, run_id = store.project_engine(), dag_run.run_id
    filed_by = getattr(dag_run, "triggering_user_name", None) or "unknown"
    request_record.append(eng, run_id, request_record.FILED, request_record.FILED, {"request": dict(request)},
                          actor=filed_by, at=dag_run.start_date or datetime.now(UTC))
    entry = request_record.register_number(eng, run_id, "in", request["subject"], datetime.now(UTC))
    return f"{entry['number']}/{entry['year_be']}"


@task(task_display_name="ขั้นตอนที่ 1 แจ้งรับเรื่อง", retries=2)
def acknowledge(request: Mapping[str, Any], receipt: str, run_id: str | None = None) -> bool:
    """Queues the acknowledgement (receipt number, expected completion date) in the outbox, once."""
    now = datetime.now(UTC)
    total = sum(limits_from_config().values())
    context = {"request": request, "org": organisation().raw["organisation"], "receipt": receipt, "received": now,
               "expected": default_calendar().add_working_days(now, total), "total_days": round(total)}
    return notices.send_notice_once(run_id, "acknowledgement", context, to=requester(request), cc=it_centre_copy(),
                            conn_id=settings().smtp_conn_id)


# Not in the backup host's pool: a half-second listing must not queue behind step 6's long jobs
# before the director is even asked (tests/test_dag_integrity.py, BENCHMARKS.md *100 at once*).
@task(task_display_name="ขั้นตอนที่ 1 ตรวจชุดข้อมูลที่ขอกู้คืน", retries=2)
def check_restore_source(request: Mapping[str, Any], run_id: str | None = None) -> str | None:
    """A restore request: a snapshot at or before `as_of` exists on the backup host, before anyone is asked.

    A server never backed up here, or one with no snapshot at or before `as_of`, is refused (naming
    the field) instead of at step 6 after every human step. Step 6 chooses again: retention may have
    pruned this one in between.
    """
    if not request.get("restore"):
        return None
    try:
        listing = run_on_backup_host("list_snapshots", request, run_id)
    except AirflowException as err:
        raise AirflowFailException(f"restore.hostname: {err}") from err
    return snapshot_as_of(request, listing)


def receive_memo() -> tuple[TaskGroup, Any, Any]:
    """Step 1's tasks; returns the step, the validated request and its receipt number (XComArgs)."""
    with TaskGroup(group_id="receive_memo", prefix_group_id=False, group_display_name=steps.INTAKE.title) as step:
        request = validate_request()
        receipt = register_receipt(request)
        chain(acknowledge(request, receipt), check_restore_source(request))
    return step, request, receipt
