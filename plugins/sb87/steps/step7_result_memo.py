"""ขั้นตอนที่ 7 ทำหนังสือแจ้งหน่วยงานผู้ร้องขอฯ ทราบ — the memo that tells the requesting unit.

The result memo (บันทึกข้อความ แจ้งผลการดำเนินงาน) or, for a rejected request, the rejection memo: an
outgoing number from the register (kept on retry), the PDF, and a Thai HTML + text e-mail carrying
it, queued once in the outbox, copied to the IT Centre and General Administration. The result memo
says what steps 5 and 6 did as they reported it, with the SHA-256 manifest attached in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import TaskGroup, task
from airflow.sdk.exceptions import DownstreamTasksSkipped

from sb87 import documents, notices, steps
from sb87.airflow_api import append_run_note, set_run_note
from sb87.backup.results import restore_outcome, server_outcomes
from sb87.notices.recipients import memo_copies, requester
from sb87.records import request_record, store
from sb87.records.run_note import done_note
from sb87.settings import organisation, settings
from sb87.steps.closing import close_in
from sb87.timekeeping.thai_dates import bangkok_date


def notice_context(request: Mapping[str, Any], decision: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    org = organisation()
    return {"request": request, "decision": decision, "org": org.raw["organisation"],
            "sub_units": [org.sub_unit_name(code) for code in decision["sub_units"]], "today": bangkok_date(),
            **extra}


def outgoing_memo(run_id: str, kind: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Step 7's memo: an outgoing number from the register (kept on retry), then the PDF.

    Returns `{"number", "date", "path"}` for the e-mail that carries it.
    """

    entry = request_record.register_number(store.project_engine(), run_id, "out", context["request"]["subject"],
                                    datetime.now(UTC))
    # The number runs per Buddhist-Era year; the memo's date says which year it belongs to.
    path = documents.outgoing_memo_pdf(run_id, kind, str(entry["number"]), entry["registered_at"], context)
    return {"number": f"{organisation()['letter_code']}/{entry['number']}", "date": entry["registered_at"],
            "path": path}


def send_memo_notice(run_id: str, kind: str, context: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """The outgoing memo attached to the `kind` e-mail to the requester, copied to the IT Centre and
    General Administration, queued once per run. Returns (whether this call queued it, the memo)."""
    memo = outgoing_memo(run_id, kind, context)
    # Checksums are never cut short in a memo: the full list goes along as `sha256sum -c` input.
    manifest = documents.write_manifest(run_id, context) if kind == "result" else None
    queued = notices.send_notice_once(run_id, kind, {**context, "memo": memo},
                              attachments=[memo["path"], *([manifest] if manifest else [])],
                              to=requester(context["request"]), cc=memo_copies(), conn_id=settings().smtp_conn_id)
    return queued, memo


# Steps 5 and 6 may be skipped (one service asked) but must not have failed: the requester is never told
# "done" for work that failed.
@task(task_id=steps.NOTIFY_RESULT, task_display_name=steps.RESULT.title, retries=2,
      trigger_rule="none_failed_min_one_success")
def notify_result(decision: Mapping[str, Any], request: Mapping[str, Any], **context: Any) -> bool:
    """The Thai result e-mail with the result memo (PDF) to the requester, queued once: what steps 5
    and 6 did, as they reported it."""
    ti, dag_run = context["ti"], context["dag_run"]
    servers = server_outcomes(request, ti.xcom_pull(task_ids=steps.BACKUP_POLICY.task("test_backup")),
                              ti.xcom_pull(task_ids=steps.BACKUP_POLICY.task("test_restore")))
    delivered = steps.TO_SERVER if ti.xcom_pull(task_ids=steps.TO_SERVER[0]) is not None else steps.ARCHIVE
    restored = restore_outcome(request, ti.xcom_pull(task_ids=delivered[0]), ti.xcom_pull(task_ids=delivered[1]))
    queued, _ = send_memo_notice(dag_run.run_id, "result",
                                 notice_context(request, decision, servers=servers, restored=restored))
    set_run_note(dag_run.dag_id, dag_run.run_id, done_note(request, servers, restored, dag_run.run_id))
    return queued


# Reached past steps 3-6 only on a rejection: step 2 skips it on an approval, and on a rejection skips
# everything between at once (sb87.steps.step2_director_orders.route_decision).
@task(task_id=steps.NOTIFY_REJECTION, task_display_name="แจ้งผลการพิจารณา (ไม่อนุมัติ)", retries=2,
      trigger_rule="none_failed_min_one_success")
def notify_rejection(decision: Mapping[str, Any], request: Mapping[str, Any], dag_run: Any = None) -> None:
    """The rejection and its reason as a memo to the requester, queued once; then the request's close,
    here: the run ends successfully as soon as this task does.

    Why not in `close_request`: with 100 requests rejected at once, each close waited a median 26 s for an
    executor slot behind other runs' memos, and the run a further scheduler pass for it (profiled with
    bench/burst.py --answer reject). Should this task fail, the close task runs as for any failure."""
    _, memo = send_memo_notice(dag_run.run_id, "rejection", notice_context(request, decision))
    append_run_note(dag_run.dag_id, dag_run.run_id, f"หนังสือแจ้งผล ที่ {memo['number']}: {memo['path']}")
    close_in(dag_run, steps.NOTIFY_REJECTION)
    raise DownstreamTasksSkipped(tasks=[steps.CLOSE_TASK])


def result_memo(decision: Any, request: Any) -> TaskGroup:
    """Step 7's tasks: the result memo, or the rejection memo."""
    with TaskGroup(group_id="result_memo", prefix_group_id=False, group_display_name=steps.RESULT.title) as step:
        notify_result(decision, request)
        notify_rejection(decision, request)
    return step
