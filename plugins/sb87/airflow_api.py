"""The pipeline's own calls to Airflow's public REST API: what the Task SDK cannot do.

A task cannot write its run's note or list other runs' task instances through the Task SDK (the
execution API has no such calls), so these go through the public REST API with a service account
from the connection `sb87_airflow_api` (type http: host, port, login, password).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException, AirflowRuntimeError

API_CONN_ID = "sb87_airflow_api"
MAX_NOTE = 1000  # Airflow's limit for a run note
STEP_LINE = "ขั้นตอนที่"  # each step's block in a run note starts with it

log = logging.getLogger(__name__)


@contextmanager
def api_session(conn_id: str = API_CONN_ID) -> Iterator[httpx.Client]:
    """An HTTP client on the API server, logged in as the service account."""
    conn = Connection.get(conn_id)
    base = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8080}"
    with httpx.Client(base_url=base, timeout=30) as http:
        token = http.post("/auth/token", json={"username": conn.login, "password": conn.password})
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http


def run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"


def set_run_note(dag_id: str, run_id: str, text: str, conn_id: str = API_CONN_ID) -> bool:
    """Replace the run's note with `text` (cut to Airflow's limit); True when it was written.

    A missing connection or an unreachable API only logs a warning: a note is information and must
    never fail the request it describes.
    """
    note = text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 1] + "…"
    try:
        with api_session(conn_id) as http:
            http.patch(run_path(dag_id, run_id), json={"note": note}).raise_for_status()
    except (AirflowNotFoundException, AirflowRuntimeError, httpx.HTTPError) as err:
        log.warning("run note not written: %s", err)
        return False
    return True


def append_run_note(dag_id: str, run_id: str, text: str, conn_id: str = API_CONN_ID, replace: str = "") -> bool:
    """Add `text` below the run's current note (same failure policy as `set_run_note`).

    With `replace`, an earlier block that starts with that line prefix (up to the next line that
    starts a step, `ขั้นตอนที่ …`) is dropped first, so a status that is re-reported (waiting for equipment)
    keeps one current block instead of piling up or wiping what earlier steps wrote.
    """
    try:
        with api_session(conn_id) as http:
            current = http.get(run_path(dag_id, run_id))
            current.raise_for_status()
            note = current.json().get("note") or ""
    except (AirflowNotFoundException, AirflowRuntimeError, httpx.HTTPError) as err:
        log.warning("run note not read: %s", err)
        return False
    if replace:
        note = drop_note_block(note, replace)
    return set_run_note(dag_id, run_id, "\n".join(filter(None, [note, text])), conn_id)


def drop_note_block(note: str, prefix: str) -> str:
    """`note` without the block that starts with a line beginning `prefix` (up to the next step line)."""
    kept, dropping = [], False
    for line in note.splitlines():
        if line.startswith(prefix):
            dropping = True
        elif dropping and line.startswith(STEP_LINE):
            dropping = False
        if not dropping:
            kept.append(line)
    return "\n".join(kept)


def open_runs_with_tasks(dag_id: str, conn_id: str = API_CONN_ID) -> list[dict[str, Any]]:
    """Every running run of `dag_id`, each with its task instances (`tasks`)."""
    with api_session(conn_id) as http:
        runs = http.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"state": "running", "limit": 1000})
        runs.raise_for_status()
        result = []
        for run in runs.json()["dag_runs"]:
            tis = http.get(f"{run_path(dag_id, run['dag_run_id'])}/taskInstances", params={"limit": 200})
            tis.raise_for_status()
            result.append({**run, "tasks": tis.json()["task_instances"]})
        return result


def run_tasks(dag_id: str, run_id: str, conn_id: str = API_CONN_ID) -> list[dict[str, Any]]:
    with api_session(conn_id) as http:
        tis = http.get(f"{run_path(dag_id, run_id)}/taskInstances", params={"limit": 200})
        tis.raise_for_status()
        return tis.json()["task_instances"]


def task_error(dag_id: str, run_id: str, task_id: str, try_number: int, conn_id: str = API_CONN_ID) -> str:
    """The error a task try failed with, in one line, as its log records it (for the IT Centre's alert)."""
    with api_session(conn_id) as http:
        response = http.get(f"{run_path(dag_id, run_id)}/taskInstances/{task_id}/logs/{try_number}",
                            params={"full_content": "true"}, headers={"Accept": "application/json"})
    if response.status_code != 200:
        return f"(log not readable: HTTP {response.status_code})"
    content = response.json().get("content") or []
    errors = [f"{e.get('exc_type')}: {e.get('exc_value')}" for entry in content if isinstance(entry, dict)
              for e in entry.get("error_detail") or []]
    events = [str(entry.get("event", "")) for entry in content
              if isinstance(entry, dict) and entry.get("level") in ("error", "critical")]
    line = " ".join((errors or events or ["(no error in the log)"])[-1].split())
    return line if len(line) <= 300 else line[:299] + "…"


def run_state(dag_id: str, run_id: str, conn_id: str = API_CONN_ID) -> str | None:
    """A run's state, or None when Airflow has no such run (deleted, or purged by `airflow db clean`)."""
    with api_session(conn_id) as http:
        response = http.get(run_path(dag_id, run_id))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["state"]


def event_log(dag_id: str, run_id: str | None = None, event: str | None = None,
              conn_id: str = API_CONN_ID) -> list[dict[str, Any]]:
    """Airflow's audit log of a DAG (of one run, or of one event), oldest first."""
    params: dict[str, Any] = {"dag_id": dag_id, "order_by": "when", "limit": 1000}
    params |= {"run_id": run_id} if run_id else {}
    params |= {"event": event} if event else {}
    with api_session(conn_id) as http:
        response = http.get("/api/v2/eventLogs", params=params)
        response.raise_for_status()
        return response.json()["event_logs"]
