"""Acting officials and leave in the roster (issue 24): the model, its validation at load, who answers,
who is told. No server: the roster is a file, the checks are functions of it and a time."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sb87.people import acting
from sb87.settings import DEFAULT_CONFIG_FILE, PROJECT_ROOT, organisation

BKK = ZoneInfo("Asia/Bangkok")
DIRECTOR_POST = "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ"
BASE = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BKK).astimezone(UTC)


def roster(*, appointments: list[dict] = (), leave: list[dict] = ()) -> dict:
    raw = copy.deepcopy(BASE)
    raw["acting"]["appointments"] = list(appointments)
    raw["acting"]["leave"] = list(leave)
    return raw


DIRECTOR_AWAY = {"acting": "group_director", "for": "it_director", "kind": acting.ACTING_IN_POST,
                 "from": "2026-12-07T08:30", "to": "2026-12-11T16:30", "order": "คำสั่งศูนย์เทคโนโลยีสารสนเทศ ที่ 12/2569"}


def refused(raw: dict) -> str:
    with pytest.raises(acting.RosterError) as err:
        acting.validate(raw)
    return str(err.value)


# ---------------------------------------------------------------------------------------------
# Refused at load, naming the entry


def test_the_shipped_roster_and_one_with_an_appointment_and_leave_load() -> None:
    acting.validate(BASE)
    leave = [{"person": "itc_director", "from": "2026-12-07", "to": "2026-12-11", "kind": "ลาพักผ่อน"}]
    acting.validate(roster(appointments=[DIRECTOR_AWAY], leave=leave))


def test_two_orders_for_the_same_post_at_the_same_time_are_refused_naming_both() -> None:
    second = {**DIRECTOR_AWAY, "acting": "staff_somchai", "from": "2026-12-10T08:30", "to": "2026-12-14",
              "order": "คำสั่ง ที่ 13/2569"}
    message = refused(roster(appointments=[DIRECTOR_AWAY, second]))
    assert "acting.appointments[1]" in message and "overlaps acting.appointments[0]" in message
    assert "คำสั่ง ที่ 13/2569" in message and "'it_director'" in message
    # One after the other is fine: the second starts when the first ends.
    acting.validate(roster(appointments=[DIRECTOR_AWAY, {**second, "from": "2026-12-11T16:30"}]))


@pytest.mark.parametrize(("entry", "expected"), [
    ({**DIRECTOR_AWAY, "acting": "nobody_here"}, "acting official 'nobody_here' is not in the roster"),
    ({**DIRECTOR_AWAY, "for": "chief_of_everything"}, "'chief_of_everything' is neither a person nor a role"),
    ({**DIRECTOR_AWAY, "from": "2026-12-11", "to": "2026-12-07"}, "the period ends before it starts"),
    ({**DIRECTOR_AWAY, "kind": "แทนเฉย ๆ"}, "must be one of รักษาราชการแทน, ปฏิบัติราชการแทน"),
    ({**DIRECTOR_AWAY, "acting": "itc_director"}, "cannot act for a post they hold"),
    ({**DIRECTOR_AWAY, "from": "7 ธันวาคม 2569"}, "is not a date"),
])
def test_a_bad_appointment_is_refused_naming_the_entry(entry: dict, expected: str) -> None:
    message = refused(roster(appointments=[entry]))
    assert message.startswith("acting.appointments[0]"), message
    assert expected in message


def test_bad_leave_is_refused_naming_the_entry() -> None:
    assert refused(roster(leave=[{"person": "ghost", "from": "2026-12-07", "to": "2026-12-08"}])).startswith(
        "acting.leave[0] (ghost")
    assert "ends before it starts" in refused(
        roster(leave=[{"person": "itc_director", "from": "2026-12-08", "to": "2026-12-07"}]))


def test_a_roster_that_leaves_a_decision_with_nobody_able_to_answer_is_refused() -> None:
    # The director is replaced (and may not answer), and the acting official is away at the same time.
    raw = roster(appointments=[DIRECTOR_AWAY],
                 leave=[{"person": "group_director", "from": "2026-12-09", "to": "2026-12-09", "kind": "ลาป่วย"}])
    message = refused(raw)
    assert "nobody could answer the decisions of role 'it_director'" in message
    assert "acting.appointments[0]" in message


def test_the_dag_does_not_load_with_a_refused_roster(tmp_path: Path) -> None:
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(roster(appointments=[{**DIRECTOR_AWAY, "acting": "nobody_here"}]),
                               ensure_ascii=False), encoding="utf-8")
    script = ("from airflow.dag_processing.dagbag import DagBag; import sys; "
              f"bag = DagBag(dag_folder={str(PROJECT_ROOT / 'dags' / 'sb87_server_backup_service.py')!r}); "
              "print(list(bag.import_errors.values())); sys.exit(0 if bag.import_errors else 3)")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SB87_CONFIG": str(path)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acting.appointments[0]" in done.stdout and "'nobody_here' is not in the roster" in done.stdout


def test_a_changed_roster_file_is_read_again_without_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(roster(), ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))
    assert acting.acting_for_in(organisation().raw, "it_director", at("2026-12-08T10:00")) == []
    path.write_text(json.dumps(roster(appointments=[DIRECTOR_AWAY]), ensure_ascii=False), encoding="utf-8")
    acting_now = acting.acting_for_in(organisation().raw, "it_director", at("2026-12-08T10:00"))
    assert [a.person for a in acting_now] == ["group_director"]
    assert organisation().raw["acting"]["appointments"][0]["order"] == DIRECTOR_AWAY["order"]


# ---------------------------------------------------------------------------------------------
# Who may answer, in which capacity


def test_the_acting_official_answers_only_while_the_order_is_in_force() -> None:
    raw = roster(appointments=[DIRECTOR_AWAY])
    may = lambda when: acting.who_may_answer(raw, ["itc_director"], at(when))  # noqa: E731
    assert may("2026-12-07T08:29") == {"itc_director": ""}
    assert may("2026-12-07T08:30") == {"group_director": f"รักษาราชการแทน {DIRECTOR_POST}"}
    assert may("2026-12-11T16:29") == {"group_director": f"รักษาราชการแทน {DIRECTOR_POST}"}
    assert may("2026-12-11T16:30") == {"itc_director": ""}


def test_under_a_delegation_the_absent_official_keeps_the_right_to_answer_and_an_order_can_say_otherwise() -> None:
    delegated = roster(appointments=[{**DIRECTOR_AWAY, "kind": acting.ACTING_BY_DELEGATION}])
    assert acting.who_may_answer(delegated, ["itc_director"], at("2026-12-08T10:00")) == {
        "itc_director": "", "group_director": f"ปฏิบัติราชการแทน {DIRECTOR_POST}"}
    kept = roster(appointments=[{**DIRECTOR_AWAY, "absent_may_answer": True}])
    assert set(acting.who_may_answer(kept, ["itc_director"], at("2026-12-08T10:00"))) == {"itc_director",
                                                                                          "group_director"}


def test_an_acting_official_added_at_open_loses_the_right_when_the_order_ends() -> None:
    raw = roster(appointments=[DIRECTOR_AWAY])
    assigned = acting.assigned_with_acting(raw, [{"id": "itc_director", "name": "ผอ."}], at("2026-12-08T10:00"))
    assert assigned[1] == {"id": "acting:group_director",
                           "name": f"ผู้อำนวยการกลุ่มระบบเครือข่าย (รักษาราชการแทน {DIRECTOR_POST})"}
    ids = [u["id"] for u in assigned]
    in_force = acting.answer_capacity(raw, "group_director", ids, at("2026-12-08T10:00"))
    assert in_force == f"รักษาราชการแทน {DIRECTOR_POST}"
    assert acting.answer_capacity(raw, "group_director", ids, at("2026-12-12T10:00")) is None
    assert acting.answer_capacity(raw, "itc_director", ids, at("2026-12-12T10:00")) == ""
    assert acting.answer_capacity(raw, "staff_suda", ids, at("2026-12-08T10:00")) is None


def test_leave_alone_does_not_take_the_right_to_answer() -> None:
    raw = roster(leave=[{"person": "itc_director", "from": "2026-12-07", "to": "2026-12-11", "kind": "ลาพักผ่อน"}])
    assert acting.who_may_answer(raw, ["itc_director"], at("2026-12-08T10:00")) == {"itc_director": ""}


# ---------------------------------------------------------------------------------------------
# Who is told; what a board shows


def test_notices_go_to_whoever_is_in_office() -> None:
    when = at("2026-12-08T10:00")
    assert [p.person for p in acting.in_office(BASE, "itc_director", when)] == ["itc_director"]
    appointed = acting.in_office(roster(appointments=[DIRECTOR_AWAY]), "itc_director", when)
    assert [(p.person, p.email) for p in appointed] == [("group_director", "group.director@doh.example.go.th")]
    assert "รักษาราชการแทน" in appointed[0].why and "12/2569" in appointed[0].why


def test_leave_without_an_order_goes_to_the_next_in_precedence_who_is_in_office_saying_why() -> None:
    leave = [{"person": "itc_director", "from": "2026-12-07", "to": "2026-12-11", "kind": "ลาพักผ่อน"}]
    told = acting.in_office(roster(leave=leave), "itc_director", at("2026-12-08T10:00"))
    assert [p.person for p in told] == ["group_director"]
    assert "ลาพักผ่อน" in told[0].why and "ไม่มีคำสั่งให้ผู้ใดรักษาราชการแทน" in told[0].why
    assert "ลำดับถัดไป" in told[0].why
    # The next in precedence away too: the one after them.
    both = [*leave, {"person": "group_director", "from": "2026-12-08", "to": "2026-12-08"}]
    assert [p.person for p in acting.in_office(roster(leave=both), "group_director", at("2026-12-08T10:00"))] == [
        "staff_somchai"]


def test_acting_for_lists_the_acting_official_of_a_role_or_a_person(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(roster(appointments=[DIRECTOR_AWAY]), ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))
    def check(who: str) -> list[acting.Acting]:
        return acting.acting_for_in(organisation().raw, who, at("2026-12-08T10:00"))

    for who in ("it_director", "itc_director"):
        found = check(who)
        assert [(a.person, a.kind, a.post_title, a.order) for a in found] == [
            ("group_director", acting.ACTING_IN_POST, DIRECTOR_POST, DIRECTOR_AWAY["order"])]
        assert found[0].capacity == f"รักษาราชการแทน {DIRECTOR_POST}"
    assert check("group_director") == []


# ---------------------------------------------------------------------------------------------
# The deadline watch, the memo, the auth managers: the same rules where they are applied


def _use(raw: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))


def _waiting_director_decision(run_id: str, raised: datetime) -> dict:
    from sb87 import steps

    return {"dag_run_id": run_id, "note": "", "tasks": [
        {"task_id": steps.VALIDATE, "state": "success", "start_date": raised.isoformat(),
         "end_date": raised.isoformat()},
        {"task_id": steps.DIRECTOR_DECISION, "state": "awaiting_input", "start_date": raised.isoformat(),
         "end_date": None}]}


def _watch(tmp_path: Path) -> tuple[Callable[[datetime, list[dict]], list[dict]], list[tuple[str, dict, list]]]:
    from sb87.records import store
    from sb87.timekeeping.deadlines import process
    from sb87.timekeeping.workdays import WorkingCalendar

    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    sent: list[tuple[str, dict, list]] = []
    limits = {"director_decision": 1}
    return (lambda now, runs: process(runs, now, WorkingCalendar(), limits, eng,
                                      lambda level, ctx, to: sent.append((level, ctx, to))), sent)


def test_a_director_away_with_no_order_escalates_once_to_the_next_in_precedence_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sb87.notices.messages import render_notice

    leave = [{"person": "itc_director", "from": "2026-11-23", "to": "2026-11-27", "kind": "ลาพักผ่อน"}]
    _use(roster(leave=leave), tmp_path, monkeypatch)
    watch, sent = _watch(tmp_path)
    runs = [_waiting_director_decision("manual__leave", at("2026-11-24T10:00"))]
    assert [e["level"] for e in watch(at("2026-11-26T10:00"), runs)] == ["warning", "breach", "escalation"]
    assert watch(at("2026-11-26T16:00"), runs) == []  # once
    to = {level: [email for _, email in people] for level, _, people in sent}
    assert to == {"warning": ["group.director@doh.example.go.th"], "breach": ["itc@doh.example.go.th"],
                  "escalation": ["group.director@doh.example.go.th"]}
    [escalation] = [ctx for level, ctx, _ in sent if level == "escalation"]
    text = render_notice("deadline", {**escalation, "org": BASE["organisation"]}).text
    assert "ลาพักผ่อน" in text and "ไม่มีคำสั่งให้ผู้ใดรักษาราชการแทน" in text and "ลำดับถัดไป" in text


def test_under_an_order_the_warnings_of_the_absent_director_go_to_the_acting_official(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = {**DIRECTOR_AWAY, "from": "2026-11-23", "to": "2026-11-27"}
    _use(roster(appointments=[order]), tmp_path, monkeypatch)
    watch, sent = _watch(tmp_path)
    watch(at("2026-11-24T16:30"), [_waiting_director_decision("manual__order", at("2026-11-24T10:00"))])
    [(level, context, to)] = sent
    assert (level, to) == ("warning", [("ผู้อำนวยการกลุ่มระบบเครือข่าย", "group.director@doh.example.go.th")])
    assert any("12/2569" in line for line in context["why"])


def _signature(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    at_name = next(i for i, line in enumerate(lines) if line.startswith("(") and line.endswith(")"))
    return lines[at_name: at_name + 4]


def test_memos_made_under_an_order_carry_the_acting_signature_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sb87 import documents

    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    request = json.loads((PROJECT_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    context = {"request": request, "org": BASE["organisation"], "receipt": "457/2569",
               "decision": {"approved": False, "reason": "ขอให้ระบุขนาดข้อมูล", "sub_units": []}}
    order = {**DIRECTOR_AWAY, "from": "2026-11-23", "to": "2026-11-27"}
    _use(roster(appointments=[order]), tmp_path, monkeypatch)
    under_order = documents.outgoing_memo_pdf("manual__acting", "rejection", "1236", at("2026-11-24T10:30"), context)
    assert _signature(under_order) == ["(นายประเสริฐ มั่นคง)", "ผู้อำนวยการกลุ่มระบบเครือข่าย", "รักษาราชการแทน",
                                       DIRECTOR_POST]
    after = documents.outgoing_memo_pdf("manual__after", "rejection", "1237", at("2026-11-30T10:30"), context)
    assert _signature(after)[:2] == ["(นายสมศักดิ์ ตัวอย่าง)", DIRECTOR_POST]


class _User:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name


@pytest.mark.parametrize("manager", ["RosterSimpleAuthManager", "RosterFabAuthManager"])
def test_both_auth_managers_follow_the_order_at_answer_time(manager: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sb87.people import auth

    check = getattr(auth, manager).is_authorized_hitl_task
    now = datetime.now(UTC)
    in_force = {**DIRECTOR_AWAY, "from": (now - timedelta(hours=1)).astimezone(BKK).strftime("%Y-%m-%dT%H:%M"),
                "to": (now + timedelta(hours=1)).astimezone(BKK).strftime("%Y-%m-%dT%H:%M")}
    assigned = {"itc_director"}
    _use(roster(), tmp_path, monkeypatch)
    assert [check(None, assigned_users=assigned, user=_User(u)) for u in ("itc_director", "group_director")] == [
        True, False]
    _use(roster(appointments=[in_force]), tmp_path, monkeypatch)
    assert [check(None, assigned_users=assigned, user=_User(u))
            for u in ("itc_director", "group_director", "staff_suda")] == [False, True, False]


def test_someone_who_left_the_roster_is_passed_over_in_the_precedence_list() -> None:
    raw = roster(leave=[{"person": "group_director", "from": "2026-12-07", "to": "2026-12-11"}])
    raw["users"] = [u for u in raw["users"] if u["id"] != "staff_somchai"]
    acting.validate(raw)
    assert [p.person for p in acting.in_office(raw, "group_director", at("2026-12-08T10:00"))] == ["staff_suda"]
