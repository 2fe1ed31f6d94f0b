"""Driving SB-8-7 requests through Airflow's public REST API, as staff and directors do.

Shared by the demo, the end-to-end tests and the benchmarks so that all three exercise the same
path a real client (an e-Saraban integration, a script, the UI) takes.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from sb87 import steps
from stack.client import ApiClient

DAG_ID = steps.DAG_ID
DECISION_TASK = steps.DIRECTOR_DECISION
RUN_ENDED = {"success", "failed"}  # a DAG run's terminal states
TASK_FAILED = {"failed", "upstream_failed"}


class Timeout(AssertionError):
    pass


def trigger(client: ApiClient, conf: dict[str, Any], dag_id: str = DAG_ID) -> tuple[int, Any]:
    """`POST .../dagRuns`; `logical_date` must be present (null for a manual request)."""
    return client.post(f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})


def _run_path(run_id: str, dag_id: str = DAG_ID) -> str:
    return f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"


def run_state(client: ApiClient, run_id: str, dag_id: str = DAG_ID) -> str:
    status, body = client.get(_run_path(run_id, dag_id))
    if status != 200:
        raise RuntimeError(f"GET dag run {run_id}: HTTP {status} {body}")
    return body["state"]


def task_states(client: ApiClient, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
    status, body = client.get(f"{_run_path(run_id, dag_id)}/taskInstances", limit=100)
    if status != 200:
        raise RuntimeError(f"GET task instances of {run_id}: HTTP {status} {body}")
    return {ti["task_id"]: ti["state"] for ti in body["task_instances"]}


def waiting_decisions(client: ApiClient) -> list[dict[str, Any]]:
    """Every decision still waiting for a person, across all runs (page by page: the API caps a page)."""
    found: list[dict[str, Any]] = []
    while True:
        status, body = client.get("dags/~/dagRuns/~/hitlDetails", response_received="false", limit=100,
                                  offset=len(found), order_by="ti_id")
        if status != 200:
            raise RuntimeError(f"GET hitlDetails: HTTP {status} {body}")
        found += body["hitl_details"]
        if not body["hitl_details"] or len(found) >= body["total_entries"]:
            return found


def wait_for_state(
    client: ApiClient, run_id: str, task_id: str, states: set[str], timeout: float = 120, dag_id: str = DAG_ID
) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = task_states(client, run_id, dag_id).get(task_id)
        if state in states:
            return state
        if state in TASK_FAILED and not states & TASK_FAILED:
            raise AssertionError(f"{task_id} of {run_id} is {state!r}, waiting for {sorted(states)}")
        time.sleep(0.5)
    raise Timeout(f"{task_id} of {run_id} is {state!r}, not in {sorted(states)} after {timeout:.0f} s")


def wait_for_decision(client: ApiClient, run_id: str, task_id: str = DECISION_TASK, timeout: float = 120,
                      dag_id: str = DAG_ID) -> None:
    """Wait until a decision is open (`awaiting_input`); it may be answered at once (see
    `sb87.people.decisions.Decision`)."""
    wait_for_state(client, run_id, task_id, {"awaiting_input"}, timeout, dag_id)


def respond(
    client: ApiClient,
    run_id: str,
    option: str,
    params: dict[str, Any] | None = None,
    task_id: str = DECISION_TASK,
    dag_id: str = DAG_ID,
) -> tuple[int, Any]:
    """Answer a waiting decision as the client's user (`PATCH .../hitlDetails`)."""
    path = f"{_run_path(run_id, dag_id)}/taskInstances/{task_id}/-1/hitlDetails"
    return client.patch(path, json={"chosen_options": [option], "params_input": params or {}})


def wait_for_run(client: ApiClient, run_id: str, timeout: float = 300, dag_id: str = DAG_ID) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        try:
            state = run_state(client, run_id, dag_id)
        except httpx.TimeoutException:
            # An api-server starved of CPU for a moment (two stacks on two cores) is not the run's
            # state; the wait has its own deadline and asks again, as wait_for_dag does.
            continue
        if state in RUN_ENDED:
            return state
        time.sleep(0.5)
    raise Timeout(f"run {run_id} still {state!r} after {timeout:.0f} s: {task_states(client, run_id, dag_id)}")


def task_log(client: ApiClient, run_id: str, task_id: str, try_number: int = 1, dag_id: str = DAG_ID) -> str:
    """The text of one task try's log, as the UI shows it."""
    path = f"{_run_path(run_id, dag_id)}/taskInstances/{task_id}/logs/{try_number}"
    status, body = client.get(path, full_content="true")
    if status != 200:
        raise RuntimeError(f"GET log of {task_id}: HTTP {status} {body}")
    content = body.get("content", body) if isinstance(body, dict) else body
    if not isinstance(content, list):
        return str(content)
    lines = []
    for entry in content:
        if not isinstance(entry, dict):
            lines.append(str(entry))
            continue
        lines.append(str(entry.get("event", "")))
        # A failure's message lives in its structured error detail, not in the event text.
        lines += [f"{e.get('exc_type')}: {e.get('exc_value')}" for e in entry.get("error_detail") or []]
    return "\n".join(lines)


def task_instance(client: ApiClient, run_id: str, task_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
    status, body = client.get(f"{_run_path(run_id, dag_id)}/taskInstances/{task_id}")
    if status != 200:
        raise RuntimeError(f"GET task instance {task_id} of {run_id}: HTTP {status} {body}")
    return body


def answer(client: ApiClient, run_id: str, task_id: str, option: str, params: dict[str, Any] | None = None,
           timeout: float = 120) -> None:
    """Wait until a decision is open, answer it, and insist that the answer was taken."""
    wait_for_decision(client, run_id, task_id, timeout)
    status, body = respond(client, run_id, option, params, task_id)
    if status != 200:
        raise AssertionError(f"answering {task_id} of {run_id} as {client.username}: HTTP {status} {body}")


def human_steps(staff: str = "staff_somchai", group_director: str = "group_director",
                director: str = "itc_director") -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every human step of an approved request, in order, as (user, task id, option, form input):
    approve (step 2), record the server-details document as pre-filled and endorse it (step 3),
    order `staff` to proceed (step 4)."""
    return [
        (director, steps.DIRECTOR_DECISION, steps.APPROVE, {"reason": "", "sub_units": []}),
        (staff, steps.details_task(1), steps.SUBMIT, {"location": "ห้อง DC ชั้น 3 ตู้ R04"}),
        (group_director, steps.review_task(1), steps.ENDORSE, {"reason": ""}),
        (group_director, steps.ASSIGN, steps.ORDER, {"staff": [staff], "instructions": ""}),
    ]


def carry_through(clients: Any, run_id: str, staff: str = "staff_somchai", group_director: str = "group_director",
                  director: str = "itc_director") -> None:
    """Take a request through every human step (`human_steps`) as the roster would.

    `clients(user_id)` returns a logged-in `ApiClient` (e.g. `Stack.client`).
    """
    for user, task_id, option, params in human_steps(staff, group_director, director):
        answer(clients(user), run_id, task_id, option, params)


def waiting_in(client: ApiClient, task_id: str, run_ids: set[str]) -> set[str]:
    """Which of `run_ids` have `task_id` waiting for a person now."""
    return {d["task_instance"]["dag_run_id"] for d in waiting_decisions(client)
            if d["task_instance"]["task_id"] == task_id and d["task_instance"]["dag_run_id"] in run_ids}


def carry_all_through(clients: Any, run_ids: list[str], timeout: float = 1800,
                      progress: Any = None) -> dict[str, float]:
    """`carry_through` for many runs at once, one step at a time, as a busy morning at the IT Centre.

    Each step is answered in every run once it waits in all of them. Returns, per run, the wall
    clock time (epoch seconds) at which staff were ordered to proceed (step 4). Raises Timeout or
    AssertionError naming the run when a step does not open or an answer is refused.
    """
    deadline = time.monotonic() + timeout
    wanted, admin, ordered_at = set(run_ids), clients("admin"), {}
    for user, task_id, option, params in human_steps():
        started = time.monotonic()
        while (waiting := waiting_in(admin, task_id, wanted)) != wanted:
            if time.monotonic() > deadline:
                missing = sorted(wanted - waiting)[:3]
                raise Timeout(f"{task_id}: {len(waiting)}/{len(wanted)} waiting; e.g. {missing[0]} has "
                              f"{task_states(admin, missing[0])}")
            time.sleep(1)
        if progress:
            progress(f"{task_id}: waiting in all {len(wanted)} runs after {time.monotonic() - started:.1f} s")
        person = clients(user)
        for run_id in run_ids:
            status, body = respond(person, run_id, option, params, task_id)
            if status != 200:
                raise AssertionError(f"answering {task_id} of {run_id} as {user}: HTTP {status} {body}")
            ordered_at[run_id] = time.time()
    return ordered_at
