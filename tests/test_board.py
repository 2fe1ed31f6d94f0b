"""The operations board's API on seeded data (no server): lights, who must act, filters, refusals.

Requests in every state (waiting, nearly due, late, failed, rejected, completed) and servers fresh,
stale, failing and without a policy are seeded as Airflow would hand them over (task instances in the
REST API's shape, waiting decisions with their assignees) and into a real project database (SQLite:
step-4 assignments, the register, the freshness watch's tables). The expected lights and people are
computed here from the seed alone: a round-the-clock calendar with no day off in the seeded weeks, so
"working days used" is plain elapsed time in days, and the people are read from the roster file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sb87 import steps
from sb87.backup import freshness
from sb87.board import app as board_app
from sb87.board import data
from sb87.board.app import create_app
from sb87.records import store
from sb87.settings import DEFAULT_CONFIG_FILE, PROJECT_ROOT, organisation
from sb87.timekeeping.deadlines import TERMINAL_STATES

NOW = datetime(2026, 9, 17, 3, 0, tzinfo=UTC)  # Thursday 10:00 in Bangkok; no Thai day off 7-30 September
LIMITS = {"director_decision": 1, "coordination": 3, "backup_policy": 3, "restore_file": 1, "result_memo": 1}
ROSTER = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
INTAKE_DONE = [{"task_id": t, "state": "success", "start_date": None, "end_date": None}
               for t in ("validate_request", "register_receipt", "acknowledge")]


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def task(task_id: str, state: str, started_days_ago: float, ended_days_ago: float | None = None) -> dict[str, Any]:
    return {"task_id": task_id, "state": state, "map_index": -1, "start_date": ago(started_days_ago).isoformat(),
            "end_date": ago(ended_days_ago).isoformat() if ended_days_ago is not None else None}


def conf(unit: str, memo_no: str, services: tuple[str, ...] = ("backup",)) -> dict[str, Any]:
    return {"agency": unit, "memo_no": memo_no, "memo_date": "2026-09-01", "services": list(services),
            "servers": [{"hostname": "fileserver01"}], "subject": "ขอใช้บริการ"}


UNIT_A, UNIT_B = "แขวงทางหลวงสกลนครที่ 1", "สำนักงานทางหลวงที่ 1"


def director_waiting(run_id: str, unit: str, days: float) -> data.RunRecord:
    return data.RunRecord(
        run_id, "running", conf(unit, f"ทล 06{run_id[-2:]}/2569"), ago(days + 0.01), None,
        (*INTAKE_DONE, task(steps.DIRECTOR_DECISION, "awaiting_input", days)),
        (data.Waiting(steps.DIRECTOR_DECISION, -1, ("itc_director",), "[SB-8-7] พิจารณาคำขอ", ago(days)),))


def seeded_runs() -> list[data.RunRecord]:
    review = steps.review_task(1)
    return [
        director_waiting("req-waiting-01", UNIT_A, 0.25),  # a quarter of a 1-day limit: green
        director_waiting("req-nearly-02", UNIT_B, 0.8),  # 80 %: amber
        director_waiting("req-late-03", UNIT_A, 1.5),  # past the limit: red
        data.RunRecord(  # step 3's review 3.2 days into a 3-day limit: red, for the group director
            "req-review-04", "running", conf(UNIT_B, "ทล 0604/2569"), ago(4), None,
            (*INTAKE_DONE, task(steps.DIRECTOR_DECISION, "success", 3.9, 3.8),
             task(steps.details_task(1), "success", 3.2, 1), task(review, "awaiting_input", 1)),
            (data.Waiting(review, -1, ("group_director",), "[SB-8-7] พิจารณาเอกสาร", ago(1)),)),
        data.RunRecord(  # step 5 failed; the teardown is still running: a failed mark, the staff ordered
            "req-failed-05", "running", conf(UNIT_A, "ทล 0605/2569"), ago(3), None,
            (*INTAKE_DONE, task(steps.DIRECTOR_DECISION, "success", 2.9, 2.8),
             task(steps.ASSIGN, "success", 1.5, 1.2), task(steps.READINESS, "success", 1.1, 1.0),
             task(steps.BACKUP_POLICY.task("create_policy"), "failed", 1.0, 0.9),
             task(steps.CLOSE_TASK, "running", 0.01))),
        data.RunRecord(  # step 5 running, 1 of 3 days used: green, the staff ordered
            "req-policy-06", "running", conf(UNIT_B, "ทล 0606/2569"), ago(2), None,
            (*INTAKE_DONE, task(steps.DIRECTOR_DECISION, "success", 1.9, 1.8),
             task(steps.ASSIGN, "success", 1.5, 1.2), task(steps.READINESS, "success", 1.0, 0.9),
             task(steps.BACKUP_POLICY.task("test_backup"), "running", 0.5))),
        data.RunRecord("req-rejected-07", "success", conf(UNIT_A, "ทล 0607/2569"), ago(12), ago(10),
                       (*INTAKE_DONE, task(steps.DIRECTOR_DECISION, "success", 11, 10.5),
                        task(steps.NOTIFY_REJECTION, "success", 10.1, 10.0),
                        task(steps.NOTIFY_RESULT, "skipped", 10.1, 10.0))),
        data.RunRecord("req-done-08", "success", conf(UNIT_B, "ทล 0608/2569"), ago(9), ago(5),
                       (*INTAKE_DONE, task(steps.NOTIFY_REJECTION, "skipped", 5.2, 5.1),
                        task(steps.NOTIFY_RESULT, "success", 5.2, 5.0))),
        data.RunRecord("req-broken-09", "failed", conf(UNIT_A, "ทล 0609/2569"), ago(25), ago(20),
                       (*INTAKE_DONE, task(steps.BACKUP_POLICY.task("create_policy"), "failed", 21, 20.5))),
        data.RunRecord("req-old-10", "success", conf(UNIT_A, "ทล 0610/2569"), ago(120), ago(100), INTAKE_DONE),
    ]


# The independent computation: elapsed days against the seed's limit, and the people the seed names.
EXPECTED = {
    # run id: (step, limit days, days used, failed?, who must act)
    "req-waiting-01": (2, 1, 0.25, False, ["itc_director"]),
    "req-nearly-02": (2, 1, 0.8, False, ["itc_director"]),
    "req-late-03": (2, 1, 1.5, False, ["itc_director"]),
    "req-review-04": (3, 3, 3.2, False, ["group_director"]),
    "req-failed-05": (5, 3, 0.2, True, ["staff_suda"]),  # its clock stopped when create_policy failed
    "req-policy-06": (5, 3, 1.0, False, ["staff_somchai"]),
}
ASSIGNED = {"req-failed-05": ["staff_suda"], "req-policy-06": ["staff_somchai"]}


def expected_light(limit: float, used: float, failed: bool) -> str:
    if failed:
        return "failed"
    if used >= limit:
        return "red"
    return "amber" if used / limit >= 0.75 else "green"


INVENTORY = [
    {"id": "srv-fresh", "hostname": "fresh01", "agency": UNIT_A},
    {"id": "srv-stale", "hostname": "stale01", "agency": UNIT_A},
    {"id": "srv-failing", "hostname": "failing01", "agency": UNIT_B},
    {"id": "srv-none", "hostname": "none01", "agency": UNIT_B},
]


@pytest.fixture
def project_db(tmp_path: Path) -> Iterator[Any]:
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    for run_id, staff in ASSIGNED.items():
        store.save_assignment(eng, run_id, staff, "group_director")
    store.register_document(eng, "req-late-03", "in", "ขอใช้บริการ", ago(1.6))
    for sid, schedule in (("srv-fresh", "daily 01:00"), ("srv-stale", "daily 01:00"), ("srv-failing", "daily 02:00")):
        freshness.record_policy(eng, server_id=sid, hostname=sid, agency="", ssh_conn_id="c", schedule=schedule,
                                run_id="req-done-08", now=ago(30))
    with eng.begin() as db:
        for sid, state, snap_days, exit_code in (("srv-fresh", "ok", 0.3, 0), ("srv-stale", "overdue", 2.3, 0),
                                                 ("srv-failing", "failed", 1.3, 3)):
            # An older, healthy check first: the board must show the newest.
            db.execute(freshness.checks.insert().values(checked_at=ago(5), server_id=sid, state="ok",
                                                        last_snapshot_at=ago(5.3), last_exit=0, detail=""))
            db.execute(freshness.checks.insert().values(checked_at=ago(0.1), server_id=sid, state=state,
                                                        last_snapshot_at=ago(snap_days), last_exit=exit_code,
                                                        detail=""))
        db.execute(freshness.incidents.insert().values(incident_key="freshness:srv-stale:x", server_id="srv-stale",
                                                       state="overdue", opened_at=ago(1)))
        db.execute(freshness.incidents.insert().values(incident_key="freshness:srv-fresh:old", server_id="srv-fresh",
                                                       state="failed", opened_at=ago(9), recovered_at=ago(8)))
    yield eng
    store.engine.cache_clear()


@pytest.fixture
def round_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**ROSTER, "calendar": {"timezone": "Asia/Bangkok", "office_hours": ["00:00", "24:00"], "weekend": []},
              "step_limits_working_days": LIMITS}
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))


def seeded_app(user_id: str, eng: Any) -> Any:
    """The board's own app and routes, with the seed behind its data dependency and `user_id` logged in."""
    app = create_app()
    runs = seeded_runs()
    loaded = {"now": NOW, "runs": runs, "facts": data.project_facts(eng, [r.run_id for r in runs]),
              "servers": data.server_facts(eng), "inventory": INVENTORY}
    app.dependency_overrides[board_app.viewer] = lambda: organisation().person(user_id)
    app.dependency_overrides[board_app.loaded_board] = lambda: loaded
    return app


def client_as(user_id: str, eng: Any) -> TestClient:
    return TestClient(seeded_app(user_id, eng))


def roster_person(user_id: str) -> dict[str, str]:
    [p] = [u for u in ROSTER["users"] if u["id"] == user_id]
    return {"id": p["id"], "name": f"{p['title']}{p['given_name']} {p['surname']}", "position": p["position"]}


def test_each_open_request_shows_its_step_light_and_who_must_act(project_db: Any, round_the_clock: None) -> None:
    response = client_as("itc_director", project_db).get("/api/board")
    assert response.status_code == 200, response.text
    board = response.json()
    rows = {r["run_id"]: r for r in board["open"]}
    assert set(rows) == set(EXPECTED)
    for run_id, (step, limit, used, failed, people) in EXPECTED.items():
        row = rows[run_id]
        assert row["step"] == step, run_id
        assert row["step_title"] == next(s.title for s in steps.STEPS if s.number == step)
        assert row["light"] == expected_light(limit, used, failed), run_id
        assert row["actors"] == [roster_person(p) for p in people], run_id
        assert row["days_used"] == pytest.approx(used, abs=0.01), run_id
        assert row["days_left"] == pytest.approx(limit - used, abs=0.01), run_id
        started = min(datetime.fromisoformat(t["start_date"]) for t in next(
            r for r in seeded_runs() if r.run_id == run_id).tasks if t["start_date"] and steps.step_of(t["task_id"])
            and steps.step_of(t["task_id"]).number == step)
        assert datetime.fromisoformat(row["due_at"]) == started + timedelta(days=limit), run_id
    assert [r["light"] for r in board["open"][:2]] == ["failed", "red"], "the worst first"
    assert board["counts"] == {"green": 2, "amber": 1, "red": 2, "failed": 1}
    late = rows["req-late-03"]
    assert late["due_thai"] == "16 ก.ย. 2569 เวลา 22.00 น."  # 15 Sep 15:00 UTC + 1 day, in Bangkok (UTC+7)
    assert late["receipt"] == "1/2569"
    assert late["decision"]["task_id"] == steps.DIRECTOR_DECISION
    assert late["memo_no"] == "ทล 0603/2569" and late["memo_date_thai"] == "1 กันยายน 2569"
    assert late["services"] == ["ใช้ระบบสำรองข้อมูล"]


def test_closed_requests_of_the_last_90_days_with_their_outcome(project_db: Any, round_the_clock: None) -> None:
    board = client_as("itc_director", project_db).get("/api/board").json()
    outcomes = [(r["run_id"], r["outcome"]) for r in board["closed"]]
    assert outcomes == [("req-done-08", "completed"), ("req-rejected-07", "rejected"), ("req-broken-09", "failed")]
    assert "ขั้นตอนที่ 5" in board["closed"][2]["outcome_words"]


def test_each_deposited_server_shows_its_newest_check_and_open_incidents(project_db: Any,
                                                                         round_the_clock: None) -> None:
    board = client_as("staff_suda", project_db).get("/api/board").json()
    servers = {s["server_id"]: s for s in board["servers"]}
    assert set(servers) == {e["id"] for e in INVENTORY}
    assert (servers["srv-fresh"]["light"], servers["srv-fresh"]["state"]) == ("green", "ok")
    assert servers["srv-fresh"]["snapshot_age_hours"] == pytest.approx(7.2, abs=0.1)
    assert servers["srv-fresh"]["incidents"] == []  # recovered long ago
    assert (servers["srv-stale"]["light"], servers["srv-stale"]["state"]) == ("red", "overdue")
    assert [i["key"] for i in servers["srv-stale"]["incidents"]] == ["freshness:srv-stale:x"]
    assert (servers["srv-failing"]["light"], servers["srv-failing"]["last_exit"]) == ("red", 3)
    assert (servers["srv-none"]["light"], servers["srv-none"]["state"]) == ("none", "no_policy")


def test_filters_by_unit_step_person_and_waiting_for_me(project_db: Any, round_the_clock: None) -> None:
    client = client_as("staff_somchai", project_db)

    def ids(**params: str) -> set[str]:
        response = client.get("/api/board", params=params)
        assert response.status_code == 200, response.text
        return {r["run_id"] for r in response.json()["open"]}

    assert ids(unit=UNIT_B) == {r for r in EXPECTED if seeded_conf_unit(r) == UNIT_B}
    assert ids(step="2") == {r for r, e in EXPECTED.items() if e[0] == 2}
    assert ids(person="group_director") == {"req-review-04"}
    assert ids(mine="1") == {"req-policy-06"}  # staff_somchai: ordered at step 4 of that one only
    assert ids(unit=UNIT_A, step="2") == {"req-waiting-01", "req-late-03"}


def seeded_conf_unit(run_id: str) -> str:
    return next(r.conf["agency"] for r in seeded_runs() if r.run_id == run_id)


@pytest.mark.parametrize(("params", "field"), [
    ({"unit": "หน่วยงานที่ไม่มีจริง"}, "unit"),
    ({"step": "9"}, "step"),
    ({"step": "two"}, "step"),
    ({"person": "nobody"}, "person"),
    ({"mine": "yes"}, "mine"),
])
def test_bad_filters_get_400_naming_the_field_and_the_page_still_renders(
        project_db: Any, round_the_clock: None, params: dict[str, str], field: str) -> None:
    client = client_as("itc_director", project_db)
    response = client.get("/api/board", params=params)
    assert response.status_code == 400
    assert response.json()["field"] == field and field in response.json()["detail"]
    page = client.get("/", params=params)
    assert page.status_code == 400
    assert f'data-field="{field}"' in page.text and 'id="open-requests"' in page.text


def test_the_page_shows_a_late_request_in_red_with_its_decision_link(project_db: Any, round_the_clock: None) -> None:
    page = client_as("itc_director", project_db).get("/")
    assert page.status_code == 200
    row = page.text.split('data-run-id="req-late-03"', 1)[1].split("</tr>", 1)[0]
    assert 'data-light="red"' in row and "เกินกำหนด" in row
    assert f"/dags/{steps.DAG_ID}/runs/req-late-03/tasks/{steps.DIRECTOR_DECISION}/required_actions" in row
    assert "นายสมศักดิ์ ตัวอย่าง" in row


def test_the_acting_official_shows_under_who_must_act_while_the_order_is_in_force(
        project_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bangkok = "%Y-%m-%dT%H:%M:%S"
    order = {"acting": "group_director", "for": "it_director", "kind": "รักษาราชการแทน",
             "from": (NOW - timedelta(days=2) + timedelta(hours=7)).strftime(bangkok),
             "to": (NOW + timedelta(days=2) + timedelta(hours=7)).strftime(bangkok),
             "order": "คำสั่งศูนย์เทคโนโลยีสารสนเทศ ที่ 97/2569"}
    config = {**ROSTER, "acting": {**ROSTER.get("acting", {}), "appointments": [order]},
              "calendar": {"timezone": "Asia/Bangkok", "office_hours": ["00:00", "24:00"], "weekend": []},
              "step_limits_working_days": LIMITS}
    path = tmp_path / "acting.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))
    rows = {r["run_id"]: r for r in client_as("itc_director", project_db).get("/api/board").json()["open"]}
    director = roster_person("itc_director")
    acting_one = {**roster_person("group_director"), "position": "รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ"}
    assert rows["req-late-03"]["actors"] == [director, acting_one]
    assert rows["req-policy-06"]["actors"] == [roster_person("staff_somchai")], "nobody acts for staff"


def test_each_server_shows_its_newest_drill_and_a_failed_one_turns_it_red(project_db: Any,
                                                                          round_the_clock: None) -> None:
    from sb87.backup import drill

    def drilled(sid: str, state: str, days: float, estimate: float | None) -> dict[str, Any]:
        return {"run_id": "drill-run", "server_id": sid, "hostname": sid, "state": state, "started_at": ago(days),
                "finished_at": ago(days), "files": 3, "bytes": 10, "verified": 3, "changed": 0, "mismatches": 0,
                "duration_seconds": 1.0, "estimated_full_restore_seconds": estimate, "detail": ""}

    with project_db.begin() as db:
        db.execute(drill.drills.insert(), [drilled("srv-fresh", "passed", 40, 5400.0),
                                           drilled("srv-fresh", "failed", 10, None),
                                           drilled("srv-failing", "passed", 3, 5400.0)])
    servers = {s["server_id"]: s for s in client_as("staff_suda", project_db).get("/api/board").json()["servers"]}
    fresh = servers["srv-fresh"]
    assert (fresh["state"], fresh["light"], fresh["drill"]["state"]) == ("ok", "red", "failed"), (
        "backups arrive, but the newest drill failed: not proven restorable")
    assert fresh["drill"]["at_thai"].endswith("2569 เวลา 10.00 น.")
    assert servers["srv-failing"]["drill"]["estimated_full_restore_hours"] == 1.5
    assert servers["srv-none"]["drill"] is None


def test_the_sql_step_of_a_task_is_the_step_that_owns_it(tmp_path: Path) -> None:
    """The board sums task instances up per step in SQL (`data._step_number`): for every task of the
    request DAG it names the step `steps.step_of` names, and none for the closing teardown."""
    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import create_engine, literal, select

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "sb87_server_backup_service.py"), safe_mode=False)
    task_ids = [t.task_id for t in bag.dags[steps.DAG_ID].tasks]
    eng = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with eng.connect() as db:
        for task_id in task_ids:
            number = db.execute(select(data._step_number(literal(task_id)))).scalar()
            owner = steps.step_of(task_id)
            assert number == (owner.number if owner else None), task_id
    assert steps.CLOSE_TASK in task_ids and len(task_ids) > 30


def summed_up(run: data.RunRecord) -> data.RunRecord:
    """What `data.airflow_runs` reads of a run: per step reached (started, or at work), first start, last end,
    at work if any task is, ended if all are (as its SQL sums them); then the failed task instances and step
    7's memo tasks that have a state, as they are."""
    by_step: dict[int, list[dict[str, Any]]] = {}
    for t in run.tasks:
        if (step := steps.step_of(t["task_id"])) is not None:
            by_step.setdefault(step.number, []).append(t)

    def instant(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    tasks = [data._step_summary(
        number, min((s for t in mine if (s := instant(t.get("start_date")))), default=None),
        max((e for t in mine if (e := instant(t.get("end_date")))), default=None),
        any(t.get("state") in data.ACTIVE_TASK_STATES for t in mine),
        all(t.get("state") in TERMINAL_STATES for t in mine), all(t.get("state") == "skipped" for t in mine))
        for number, mine in sorted(by_step.items())
        if any(t.get("start_date") or t.get("state") in data.ACTIVE_TASK_STATES for t in mine)]
    tasks += [t for t in run.tasks if t.get("state") in data.FAILED_TASK_STATES
              or (t["task_id"] in steps.RESULT.tasks and t.get("state") is not None)]
    return data.RunRecord(run.run_id, run.state, run.conf, run.started, run.ended, tuple(tasks), run.waiting)


def test_the_board_from_step_summaries_is_the_board_from_every_task_instance(
        project_db: Any, round_the_clock: None) -> None:
    from sb87.timekeeping.deadlines import limits_from_config
    from sb87.timekeeping.workdays import default_calendar

    # As Airflow keeps them: every task of the DAG has an instance from the start, those not yet reached
    # without a state (a step half done is still open).
    later = [steps.ASSIGN, steps.READINESS, steps.BACKUP_POLICY.task("create_policy"),
             steps.BACKUP_POLICY.task("test_restore"), steps.TO_SERVER[0], steps.NOTIFY_RESULT]
    runs = [data.RunRecord(r.run_id, r.state, r.conf, r.started, r.ended,
                           (*r.tasks, *({"task_id": t, "state": None, "start_date": None, "end_date": None}
                                        for t in later if t not in {x["task_id"] for x in r.tasks})), r.waiting)
            for r in seeded_runs()]
    facts, servers = data.project_facts(project_db, [r.run_id for r in runs]), data.server_facts(project_db)

    def board(records: list[data.RunRecord]) -> dict[str, Any]:
        return data.board(records, facts, servers, INVENTORY, NOW, default_calendar(), limits_from_config(),
                          organisation())

    assert board([summed_up(r) for r in runs]) == board(runs)


def test_the_open_list_comes_a_page_at_a_time_worst_first_with_counts_of_all(
        project_db: Any, round_the_clock: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hundreds open: a page shows `PAGE_SIZE` of them, the worst first, and the counts stay those of all."""
    monkeypatch.setattr(data, "PAGE_SIZE", 4)
    client = client_as("itc_director", project_db)
    everything = client.get("/api/board").json()
    first, second = everything, client.get("/api/board", params={"page": "2"}).json()
    assert (first["page"], first["pages"], second["page"]) == (1, 2, 2)
    assert len(first["open"]) == 4 and len(second["open"]) == len(EXPECTED) - 4
    shown = [r["run_id"] for r in first["open"] + second["open"]]
    assert sorted(shown) == sorted(EXPECTED), "every open request on exactly one page"
    assert [r["light"] for r in first["open"][:2]] == ["failed", "red"], "the worst on the first page"
    assert first["counts"] == second["counts"] == {"green": 2, "amber": 1, "red": 2, "failed": 1}
    assert first["open_total"] == first["open_matching"] == len(EXPECTED)
    page = client.get("/", params={"page": "2"}).text
    assert 'id="open-pager"' in page and 'rel="prev"' in page and "page=1" in page and 'rel="next"' not in page
    assert client.get("/api/board", params={"page": "3"}).json()["open"] == [], "past the last page: none"


@pytest.mark.parametrize("page", ["0", "-1", "two", "1001"])
def test_a_page_that_cannot_be_gets_400_naming_the_field(project_db: Any, round_the_clock: None, page: str) -> None:
    response = client_as("itc_director", project_db).get("/api/board", params={"page": page})
    assert response.status_code == 400 and response.json()["field"] == "page"


def test_airflow_runs_reads_the_form_fields_the_board_shows_and_no_other(tmp_path: Path) -> None:
    """`data.airflow_runs` reads the run's `conf` field by field (`CONF_FIELDS`), not the whole form."""
    from airflow.models import import_all_models
    from airflow.models.dagrun import DagRun
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    eng = create_engine(f"sqlite:///{tmp_path / 'airflow.db'}")
    import_all_models()  # every table the run's foreign keys name
    DagRun.metadata.create_all(eng)
    form = {**json.loads((PROJECT_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8")),
            "secret_note": "not for the board"}
    with Session(eng) as session:
        session.execute(insert(DagRun.__table__).values(
            dag_id=steps.DAG_ID, run_id="req-1", state="running", conf=form, run_type="manual",
            start_date=NOW - timedelta(days=1), queued_at=NOW - timedelta(days=1), clear_number=0,
            log_template_id=None, updated_at=NOW, run_after=NOW - timedelta(days=1)))
        session.commit()
        [run] = data.airflow_runs(session, NOW)
    assert run.conf == {k: form[k] for k in data.CONF_FIELDS if k in form}
    assert data._memo(run.conf)["unit"] == form["agency"]
