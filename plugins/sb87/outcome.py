"""Step 7 and the close of a request: the result or rejection memo, the summary, the failure alert."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sb87 import steps
from sb87.airflow_api import append_run_note, set_run_note
from sb87.settings import organisation, settings
from sb87.thai_dates import bangkok_date


def requester(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(request["contact_name"], request["contact_email"])]


def it_centre_copy() -> list[tuple[str, str]]:
    org = organisation()
    return [(org["unit"], org["it_centre_email"])]


def memo_copies() -> list[tuple[str, str]]:
    """An outgoing memo is copied to the IT Centre and to General Administration, which files it."""
    return [*it_centre_copy(), ("ฝ่ายบริหารงานทั่วไป", organisation()["admin_division_email"])]


def notice_context(request: Mapping[str, Any], decision: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    org = organisation()
    return {"request": request, "decision": decision, "org": org.raw["organisation"],
            "sub_units": [org.sub_unit_name(code) for code in decision["sub_units"]], "today": bangkok_date(),
            **extra}


def outgoing_memo(run_id: str, kind: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """Step 7's memo: an outgoing number from the register (kept on retry), then the PDF.

    Returns `{"number", "date", "path"}` for the e-mail that carries it.
    """
    from sb87 import store
    from sb87.documents import outgoing_memo_pdf

    entry = store.register_document(store.project_engine(), run_id, "out", context["request"]["subject"],
                                    datetime.now(UTC))
    # The number runs per Buddhist-Era year; the memo's date says which year it belongs to.
    path = outgoing_memo_pdf(run_id, kind, str(entry["number"]), entry["registered_at"], context)
    return {"number": f"{organisation()['letter_code']}/{entry['number']}", "date": entry["registered_at"],
            "path": path}


def send_memo_notice(run_id: str, kind: str, context: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """The outgoing memo attached to the `kind` e-mail to the requester, copied to the IT Centre and
    General Administration, queued once per run. Returns (whether this call queued it, the memo)."""
    from sb87.documents import write_manifest
    from sb87.notices import send_notice_once

    memo = outgoing_memo(run_id, kind, context)
    # Checksums are never cut short in a memo: the full list goes along as `sha256sum -c` input.
    manifest = write_manifest(run_id, context) if kind == "result" else None
    queued = send_notice_once(run_id, kind, {**context, "memo": memo},
                              attachments=[memo["path"], *([manifest] if manifest else [])],
                              to=requester(context["request"]), cc=memo_copies(), conn_id=settings().smtp_conn_id)
    return queued, memo


def notify_result(decision: Mapping[str, Any], request: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """The Thai result notice with the result memo (PDF), once: what steps 5 and 6 did, as they reported it."""
    from sb87.notes import done_note
    from sb87.results import restore_outcome, server_outcomes

    ti, dag_run = context["ti"], context["dag_run"]
    servers = server_outcomes(request, ti.xcom_pull(task_ids=steps.BACKUP_POLICY.task("test_backup")),
                              ti.xcom_pull(task_ids=steps.BACKUP_POLICY.task("test_restore")))
    restored = restore_outcome(request, ti.xcom_pull(task_ids=steps.RESTORE_FILE.task("package")),
                               ti.xcom_pull(task_ids=steps.RESTORE_FILE.task("verify")))
    queued, _ = send_memo_notice(dag_run.run_id, "result",
                                 notice_context(request, decision, servers=servers, restored=restored))
    set_run_note(dag_run.dag_id, dag_run.run_id, done_note(request, servers, restored, dag_run.run_id))
    return queued


def notify_rejection(decision: Mapping[str, Any], request: Mapping[str, Any], dag_run: Any) -> bool:
    """The rejection and its reason, as a memo to the requester, once; the run then ends successfully."""
    queued, memo = send_memo_notice(dag_run.run_id, "rejection", notice_context(request, decision))
    append_run_note(dag_run.dag_id, dag_run.run_id, f"หนังสือแจ้งผล ที่ {memo['number']}: {memo['path']}")
    return queued


def close_request(dag_run: Any) -> list[dict[str, Any]]:
    """Per step: start, end, due, working time used, met / missed / failed — kept in the project's
    database and in the run note. When a step failed, the IT Centre is alerted once, with the step,
    the error in one line and a link; the requester is told nothing of work that failed."""
    from sb87 import store
    from sb87.airflow_api import run_tasks
    from sb87.deadlines import limits_from_config, step_clocks, summary_rows
    from sb87.workdays import default_calendar

    tasks = run_tasks(dag_run.dag_id, dag_run.run_id)
    cal = default_calendar()
    rows = summary_rows(step_clocks(tasks, limits_from_config(), cal), datetime.now(UTC), cal)
    store.save_summary(store.project_engine(), dag_run.run_id, rows)
    lines = [f"{r['step']}: {r['working_days_used']} วันทำการ ({r['met']})" for r in rows]
    failed = [t for t in tasks if t.get("state") == "failed"]
    if failed:
        lines.insert(0, alert_failure(dag_run, failed[0]))
    append_run_note(dag_run.dag_id, dag_run.run_id, "\n".join(["สรุปเวลา:", *lines]))
    return [{**r, **{k: r[k].isoformat() if r[k] else None for k in ("started_at", "ended_at", "due_at")}}
            for r in rows]


def alert_failure(dag_run: Any, task: Mapping[str, Any]) -> str:
    """E-mails the IT Centre, once per run, that a step failed; returns the note's line about it."""
    from sb87.airflow_api import task_error
    from sb87.notices import send_notice_once

    step = steps.step_of(task["task_id"])
    title = step.title if step else task["task_id"]
    error = task_error(dag_run.dag_id, dag_run.run_id, task["task_id"], task.get("try_number") or 1)
    org = organisation().raw["organisation"]
    base = (org.get("ui_base_url") or "").rstrip("/")
    link = f"{base}/dags/{dag_run.dag_id}/runs/{dag_run.run_id}/tasks/{task['task_id']}"
    request = dict(dag_run.conf or {})
    send_notice_once(dag_run.run_id, "failure",
                     {"request": request, "step": title, "error": error, "link": link, "run_id": dag_run.run_id,
                      "task_id": task["task_id"], "org": org},
                     to=it_centre_copy(), conn_id=settings().smtp_conn_id)
    return f"ล้มเหลวที่{title} ({task['task_id']}): {error}"
