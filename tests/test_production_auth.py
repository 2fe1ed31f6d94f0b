"""Production auth on the distributed stack: FAB users and roles made from the roster, decisions bound to them.

The Celery-mode stack runs `sb87.people.auth.RosterFabAuthManager` and `python -m sb87.people.accounts`, as
the compose file's airflow-init does. What an IT Centre administrator checks: each person has the
role the roster gives them, the directors see "Required Actions", only the assigned person can
answer a decision (an operator with every operational permission cannot), the audit names the
roster person, and someone who leaves the roster can no longer act.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from sb87.steps import APPROVE, DAG_ID, DIRECTOR_DECISION
from stack import Stack
from stack.client import ApiClient
from stack.rest_driver import respond, task_states, trigger, wait_for_decision

pytestmark = [pytest.mark.stack, pytest.mark.modes("celery")]

SAMPLE = json.loads((Path(__file__).resolve().parents[1] / "config" / "sample_request.json").read_text("utf-8"))
ROSTER = json.loads((Path(__file__).resolve().parents[1] / "config" / "sb87.json").read_text("utf-8"))


@pytest.fixture
def fab_stack(airflow_stack: Stack) -> Stack:
    assert airflow_stack.auth == "fab", "the distributed (production) mode runs FAB users and roles"
    return airflow_stack


def _sync_roster(stack: Stack, config: Path | None = None) -> str:
    env = stack.env | ({"SB87_CONFIG": str(config)} if config else {})
    done = subprocess.run([sys.executable, "-m", "sb87.people.accounts"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_roster_person_has_the_fab_role_of_their_roster_role(fab_stack: Stack) -> None:
    admin = fab_stack.client("admin")
    expected = {"it_director": "SB87 IT Director", "group_director": "SB87 Group Director",
                "staff": "SB87 Staff", "operator": "SB87 Operator"}
    for person in ROSTER["users"]:
        status, user = admin.get(f"/auth/fab/v1/users/{person['id']}")
        assert status == 200, user
        assert {r["name"] for r in user["roles"]} == {expected[r] for r in person["roles"]}, person["id"]
        assert user["email"] == person["email"] and user["active"]
    # Directors and staff find the waiting decisions in the UI's menu.
    for person in ("itc_director", "staff_somchai"):
        status, menus = fab_stack.client(person).get("/ui/auth/menus")
        assert status == 200, menus
        assert "Required Actions" in menus["authorized_menu_items"], (person, menus)


def test_only_the_assigned_director_answers_and_the_audit_names_them(fab_stack: Stack, tmp_path: Path) -> None:
    conf = copy.deepcopy(SAMPLE)
    conf["memo_no"] = "ทล 0601/7601"
    status, body = trigger(fab_stack.client("staff_somchai"), conf)
    assert status == 200, body
    run_id = body["dag_run_id"]
    wait_for_decision(fab_stack.client("staff_somchai"), run_id)

    # The operator may clear and re-run tasks, but the decision is the director's: 403, nothing changes.
    for someone in ("operator", "staff_somchai", "group_director"):
        status, body = respond(fab_stack.client(someone), run_id, APPROVE, {"reason": "", "sub_units": []})
        assert status == 403, (someone, body)
    assert task_states(fab_stack.client("operator"), run_id)[DIRECTOR_DECISION] == "awaiting_input"

    status, body = respond(fab_stack.client("itc_director"), run_id, APPROVE, {"reason": "", "sub_units": []})
    assert status == 200, body
    # FAB records its row number as the user id; the audit goes by the login name, the roster's id.
    assert body["responded_by"]["name"] == "itc_director"
    director = next(p["name"] for p in ROSTER["users"] if p["id"] == "itc_director")
    path = f"dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    for _ in range(120):
        _, run = fab_stack.client("operator").get(path)
        if "อนุมัติ โดย" in (run.get("note") or ""):
            break
        time.sleep(1)
    assert f"อนุมัติ โดย {director}" in run["note"], run["note"]


def test_someone_who_leaves_the_roster_can_no_longer_log_in(fab_stack: Stack, tmp_path: Path) -> None:
    reduced = copy.deepcopy(ROSTER)
    reduced["users"] = [u for u in reduced["users"] if u["id"] != "staff_suda"]
    config = tmp_path / "sb87.json"
    config.write_text(json.dumps(reduced, ensure_ascii=False), encoding="utf-8")
    try:
        assert "staff_suda is not in the roster: SB87 roles removed, deactivated" in _sync_roster(fab_stack, config)
        with pytest.raises(PermissionError):
            _ = ApiClient(fab_stack.api_url, "staff_suda", fab_stack.password("staff_suda")).token
    finally:
        # Back on the roster: the same account, active again, with the password it had.
        assert "updated staff_suda (SB87 Staff)" in _sync_roster(fab_stack)
    assert ApiClient(fab_stack.api_url, "staff_suda", fab_stack.password("staff_suda")).token
