"""Requests ended by hand: a run's state set, a run or the DAG deleted, steps cleared, or a step's
state set by an admin in the UI or over REST.

Only the pipeline's own close (`ปิดคำขอ`) gives a request its outcome. Anything else that ends one
is found in Airflow's audit log (every such REST write is logged with its user, before the run can
be deleted), recorded in the request's record as "ended by hand by <user>", never as met, and the IT
Centre is alerted once, naming who did it. Two places look: the close itself (a decision set by
hand fails the next step, and the close then runs) and `sweep`, run by the deadline watch, for runs
that end or vanish without their close running at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from sb87 import notices, steps
from sb87.airflow_api import event_log, run_state, run_tasks
from sb87.notices.recipients import it_centre_copy
from sb87.records import request_record
from sb87.settings import organisation, settings

#: Audit-log events that end, rewind or erase a request, and the body field that makes a patch one
#: (a note edited by the pipeline's service account is a PATCH too, and ends nothing).
ENDING_EVENTS: dict[str, str | None] = {
    "patch_dag_run": "state",
    "patch_task_instance": "new_state",
    "patch_task_group_instances": "new_state",
    "delete_dag_run": None,
    "delete_dag": None,
    "clear_dag_run": None,
    "post_clear_task_instances": None,
}
WHAT = {
    "patch_dag_run": "ตั้งสถานะคำขอเป็น {state}",
    "patch_task_instance": "ตั้งสถานะงาน {task} เป็น {state}",
    "patch_task_group_instances": "ตั้งสถานะกลุ่มงาน {task} เป็น {state}",
    "delete_dag_run": "ลบคำขอ (DAG run) ออกจาก Airflow",
    "delete_dag": "ลบ DAG พร้อมคำขอทั้งหมด",
    "clear_dag_run": "ล้างสถานะคำขอ (clear)",
    "post_clear_task_instances": "ล้างสถานะงาน (clear)",
    "vanished": "คำขอหายไปจาก Airflow โดยไม่มีบันทึกว่าใครลบ",
}


def hand_writes(events: list[Mapping[str, Any]], refused: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The writes among audit-log `events` that end, rewind or erase a request, oldest first.

    `refused`: users who may not make these writes (everyone on the roster, `sb87.people.auth`).
    Airflow 3.3 logs some writes (`patch_task_instance`) before it checks access, so their refused
    attempts are in the log too: attempts, not acts.
    """
    found = []
    for event in events:
        if event.get("event") not in ENDING_EVENTS or event.get("owner") in refused:
            continue
        field = ENDING_EVENTS[event["event"]]
        extra = event.get("extra") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
        if field and not extra.get(field):
            continue
        found.append({"event": event["event"], "by": event.get("owner") or "unknown", "at": event.get("when"),
                      "task": event.get("task_id") or "", "state": extra.get(field) if field else ""})
    return sorted(found, key=lambda w: str(w["at"]))


def roster_ids() -> frozenset[str]:
    """Everyone on the roster: none of them may end a request by hand (`sb87.people.auth`)."""
    return frozenset(p.id for p in organisation().people)


def when_of(write: Mapping[str, Any]) -> datetime | None:
    """When a write was made (the audit log gives ISO text; a vanished run has no time)."""
    at = write.get("at")
    return datetime.fromisoformat(at) if isinstance(at, str) else at


def describe(write: Mapping[str, Any]) -> str:
    """The write in Thai: what was done, by whom, e.g. `ตั้งสถานะคำขอเป็น success โดย admin`."""
    what = WHAT[write["event"]].format(state=write.get("state") or "", task=write.get("task") or "")
    return f"{what} โดย {write['by']}"


def record_hand_end(eng: Engine, dag_id: str, run_id: str, writes: list[dict[str, Any]]) -> bool:
    """The outcome "ended by hand by <user>" and one alert to the IT Centre; False when recorded before."""
    first = writes[0]
    at = when_of(first)
    recorded = request_record.append(eng, run_id, request_record.OUTCOME, request_record.OUTCOME,
                                     {"outcome": request_record.ENDED_BY_HAND, "how": describe(first),
                                      "writes": writes}, actor=first["by"], at=at)
    filed = next((e for e in request_record.entries(eng, run_id) if e["kind"] == request_record.FILED), None)
    org = organisation().raw["organisation"]
    base = (org.get("ui_base_url") or "").rstrip("/")
    notices.send_notice_once(run_id, "ended_by_hand", {
        "request": filed["detail"]["request"] if filed else {}, "how": [describe(w) for w in writes],
        "by": first["by"], "run_id": run_id, "org": org, "link": f"{base}/dags/{dag_id}/runs/{run_id}",
    }, to=it_centre_copy(), conn_id=settings().smtp_conn_id)
    return recorded


def sweep(dag_id: str, eng: Engine) -> list[str]:
    """Record every open request whose run ended or vanished without its close; returns their run ids."""
    ended: list[str] = []
    dag_deletions: list[dict[str, Any]] | None = None  # the DAG's own audit entries: read once, when needed
    refused = roster_ids()
    for run_id in request_record.open_requests(eng):
        state = run_state(dag_id, run_id)
        if state in ("queued", "running"):
            continue
        if state is not None:
            closed = any(t["task_id"] == steps.CLOSE_TASK and t.get("state") == "success"
                         for t in run_tasks(dag_id, run_id))
            if closed:
                continue  # the close ran and recorded the outcome after the sweep listed the request
        if dag_deletions is None:
            dag_deletions = event_log(dag_id, event="delete_dag")
        writes = hand_writes(event_log(dag_id, run_id) + dag_deletions, refused)
        if not writes and state is None:
            writes = [{"event": "vanished", "by": "unknown", "at": None, "task": "", "state": ""}]
        if writes and record_hand_end(eng, dag_id, run_id, writes):
            ended.append(run_id)
    return ended
