"""ปิดคำขอ — the close of every request (a teardown: it never decides the run's state).

Per step: start, end, due, working days used, met / missed / failed, in the run note and the
project's database; every step's start and end and the outcome in the request's record. When a step
failed, the IT Centre is alerted once, with the step, the error in one line and a link; the
requester is told nothing of work that failed. When someone set a step's or the run's state by
hand, the request is recorded as ended by hand by that person (`sb87.records.hand_ends`), and no
step after it counts as met.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import task

from sb87 import notices, steps
from sb87.airflow_api import append_run_note, event_log, run_tasks, task_error
from sb87.notices.recipients import it_centre_copy
from sb87.records import request_record, store
from sb87.records.hand_ends import ENDING_EVENTS, describe, hand_writes, record_hand_end, roster_ids, when_of
from sb87.settings import organisation, settings
from sb87.timekeeping.deadlines import limits_from_config, step_clocks, summary_rows
from sb87.timekeeping.workdays import default_calendar


# Ahead of every other run's tasks in the executor's queue: Airflow's default weight rule ("downstream")
# would rank a task with nothing after it last, so with 100 requests rejected at once a run waited a
# median 50 s after its rejection memo for its own summary (bench/burst.py --answer reject).
@task(task_id=steps.CLOSE_TASK, task_display_name="ปิดคำขอ: สรุปเวลาแต่ละขั้นตอน", retries=2,
      weight_rule="absolute", priority_weight=1000)
def close_request(dag_run: Any = None) -> list[dict[str, Any]]:
    """Per step: start, end, due, working time used, met / missed / failed — kept in the project's
    database and in the run note. When a step failed, the IT Centre is alerted once, with the step,
    the error in one line and a link; the requester is told nothing of work that failed."""
    return close(dag_run, run_tasks(dag_run.dag_id, dag_run.run_id))


def close_in(dag_run: Any, last_task_id: str) -> list[dict[str, Any]]:
    """The close, done by the run's last working task itself (`last_task_id`, which is still running: it is
    counted as ended now and successful). The rejection memo closes its request this way."""
    now = datetime.now(UTC).isoformat()
    tasks = [{**t, "state": "success", "end_date": now} if t["task_id"] == last_task_id else t
             for t in run_tasks(dag_run.dag_id, dag_run.run_id)]
    return close(dag_run, tasks)


def close(dag_run: Any, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The close of a run whose tasks are `tasks`: the summary, the record's steps and outcome, the alert."""
    cal = default_calendar()
    rows = summary_rows(step_clocks(tasks, limits_from_config(), cal), datetime.now(UTC), cal)
    eng = store.project_engine()
    writes = hand_writes(event_log(dag_run.dag_id, dag_run.run_id), roster_ids())
    ending = [w for w in writes if w["event"] in HAND_ENDINGS]
    if ending:
        rows = [{**r, "met": BY_HAND} if not r["ended_at"] or r["ended_at"] >= when_of(ending[0]) else r
                for r in rows]
    store.save_summary(eng, dag_run.run_id, rows)
    record_steps(eng, dag_run.run_id, tasks, rows)
    lines = [f"{r['step']}: {r['working_days_used']} วันทำการ ({r['met']})" for r in rows]
    failed = [t for t in tasks if t.get("state") == "failed"]
    if failed:
        lines.insert(0, alert_failure(dag_run, failed[0]))
    if ending:
        record_hand_end(eng, dag_run.dag_id, dag_run.run_id, ending)
        lines.insert(0, f"ปิดด้วยมือ: {describe(ending[0])}")
    else:
        request_record.append(eng, dag_run.run_id, request_record.OUTCOME, request_record.OUTCOME,
                              {"outcome": outcome_of(tasks), "rewound_by_hand": [describe(w) for w in writes]})
    append_run_note(dag_run.dag_id, dag_run.run_id, "\n".join(["สรุปเวลา:", *lines]))
    return [{**r, **{k: r[k].isoformat() if r[k] else None for k in ("started_at", "ended_at", "due_at")}}
            for r in rows]


#: Writes that end a request by hand; a clear (also in `ENDING_EVENTS`) rewinds it, and the pipeline
#: then runs on to its own close, which notes who rewound it.
HAND_ENDINGS = {event for event in ENDING_EVENTS if event.startswith(("patch_", "delete_"))}
BY_HAND = "by_hand"


def outcome_of(tasks: list[Mapping[str, Any]]) -> str:
    """What the pipeline's run came to: failed, rejected, or completed (the result memo sent)."""
    states = {t["task_id"]: t.get("state") for t in tasks}
    if "failed" in states.values():
        return request_record.FAILED
    if states.get(steps.NOTIFY_REJECTION) == "success":
        return request_record.REJECTED
    if states.get(steps.NOTIFY_RESULT) == "success":
        return request_record.COMPLETED
    return request_record.FAILED


def record_steps(eng: Any, run_id: str, tasks: list[Mapping[str, Any]], rows: list[Mapping[str, Any]]) -> None:
    """Each step's start and end (its first task's start, its last task's end) into the request's record,
    with the due time and met / missed where the step has a limit."""
    limits = {r["step"]: r for r in rows}
    for step in steps.STEPS:
        ran = [t for t in tasks if step.owns(t["task_id"]) and t.get("start_date") and t.get("state") != "skipped"]
        if not ran:
            continue
        ends = [t["end_date"] for t in ran if t.get("end_date")]
        row = limits.get(step.key, {})
        request_record.append(eng, run_id, f"{request_record.STEP} {step.key}", request_record.STEP, {
            "step": step.number, "title": step.title, "started_at": min(t["start_date"] for t in ran),
            "ended_at": max(ends) if ends else None, "states": sorted({t.get("state") or "none" for t in ran}),
            "due_at": row.get("due_at"), "working_days_used": row.get("working_days_used"), "met": row.get("met"),
        })


def alert_failure(dag_run: Any, task: Mapping[str, Any]) -> str:
    """E-mails the IT Centre, once per run, that a step failed; returns the note's line about it."""
    step = steps.step_of(task["task_id"])
    title = step.title if step else task["task_id"]
    error = task_error(dag_run.dag_id, dag_run.run_id, task["task_id"], task.get("try_number") or 1)
    org = organisation().raw["organisation"]
    base = (org.get("ui_base_url") or "").rstrip("/")
    link = f"{base}/dags/{dag_run.dag_id}/runs/{dag_run.run_id}/tasks/{task['task_id']}"
    request = dict(dag_run.conf or {})
    notices.send_notice_once(dag_run.run_id, "failure",
                     {"request": request, "step": title, "error": error, "link": link, "run_id": dag_run.run_id,
                      "task_id": task["task_id"], "org": org},
                     to=it_centre_copy(), conn_id=settings().smtp_conn_id)
    return f"ล้มเหลวที่{title} ({task['task_id']}): {error}"
