"""ปิดคำขอ — the close of every request (a teardown: it never decides the run's state).

Per step: start, end, due, working days used, met / missed / failed, in the run note and the
project's database. When a step failed, the IT Centre is alerted once, with the step, the error in
one line and a link; the requester is told nothing of work that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import task

from sb87 import notices, steps
from sb87.airflow_api import append_run_note, run_tasks, task_error
from sb87.notices.recipients import it_centre_copy
from sb87.records import store
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
