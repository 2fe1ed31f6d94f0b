"""The deadline watch with a controlled clock: each notice once, at the right instant, none when in time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sb87 import steps
from sb87.notices.messages import render_notice
from sb87.records import store
from sb87.settings import organisation
from sb87.timekeeping.deadlines import process, step_clocks, summary_rows
from sb87.timekeeping.workdays import WorkingCalendar

BKK = ZoneInfo("Asia/Bangkok")
CAL = WorkingCalendar()
LIMITS = {"director_decision": 1, "backup_policy": 3, "restore_file": 1, "result_memo": 1}
# Raised Tuesday 24 Nov 2026 10:00: due Wednesday 10:00; 75 % of 8 office hours is reached at 16:00.
RAISED = datetime(2026, 11, 24, 10, 0, tzinfo=BKK)


def _run(run_id: str, decision_state: str = "awaiting_input", end: datetime | None = None) -> dict:
    return {
        "dag_run_id": run_id,
        "note": "แขวงทางหลวงสกลนครที่ 1 หนังสือที่ ทล 0618/2569",
        "tasks": [
            {"task_id": steps.VALIDATE, "state": "success",
             "start_date": (RAISED - timedelta(minutes=1)).isoformat(), "end_date": RAISED.isoformat()},
            {"task_id": steps.DIRECTOR_DECISION, "state": decision_state, "start_date": RAISED.isoformat(),
             "end_date": end.isoformat() if end else None},
            {"task_id": steps.FIRST_BACKUP_TASK, "state": None, "start_date": None, "end_date": None},
        ],
    }


@pytest.fixture
def watch(tmp_path):
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    sent: list[tuple[str, dict, list]] = []

    def at(now: datetime, runs: list[dict]) -> list[dict]:
        return process(runs, now, CAL, LIMITS, eng, lambda level, ctx, to: sent.append((level, ctx, to)))

    at.sent = sent
    at.engine = eng
    return at


def test_warning_breach_and_escalation_fire_once_each_at_the_right_instants(watch) -> None:
    runs = [_run("manual__1")]
    assert watch(datetime(2026, 11, 24, 15, 59, tzinfo=BKK), runs) == []  # 5 h 59 m < 75 % of 8 h
    assert [e["level"] for e in watch(datetime(2026, 11, 24, 16, 0, tzinfo=BKK), runs)] == ["warning"]
    assert watch(datetime(2026, 11, 24, 20, 0, tzinfo=BKK), runs) == []  # after hours: no new level
    assert watch(datetime(2026, 11, 25, 9, 59, tzinfo=BKK), runs) == []
    assert [e["level"] for e in watch(datetime(2026, 11, 25, 10, 0, tzinfo=BKK), runs)] == ["breach"]
    assert watch(datetime(2026, 11, 26, 9, 59, tzinfo=BKK), runs) == []
    assert [e["level"] for e in watch(datetime(2026, 11, 26, 10, 0, tzinfo=BKK), runs)] == ["escalation"]
    assert watch(datetime(2026, 11, 30, 10, 0, tzinfo=BKK), runs) == []  # never twice

    levels = [(level, [e for _, e in to]) for level, _, to in watch.sent]
    assert levels == [
        ("warning", ["director@doh.example.go.th"]),
        ("breach", ["itc@doh.example.go.th"]),
        ("escalation", ["director@doh.example.go.th"]),
    ]
    recorded = store.events(watch.engine, "manual__1")
    assert [(e["level"], e["sent_at"] is not None) for e in recorded] == [
        ("warning", True), ("breach", True), ("escalation", True)
    ]


def test_a_restarted_watch_sends_nothing_twice(watch, tmp_path) -> None:
    runs = [_run("manual__2")]
    watch(datetime(2026, 11, 25, 11, 0, tzinfo=BKK), runs)
    again = process(runs, datetime(2026, 11, 25, 11, 15, tzinfo=BKK), CAL, LIMITS,
                    store.engine(f"sqlite:///{tmp_path / 'sb87.db'}"), lambda *a: pytest.fail(f"sent again: {a}"))
    assert again == []


def test_a_watch_that_was_down_tells_the_assignee_alerts_then_escalates(watch) -> None:
    """The assignee hears of the step at least once, even when the watch missed the warning's window;
    worded as due, not as nearly due."""
    sent = watch(datetime(2026, 12, 1, 12, 0, tzinfo=BKK), [_run("manual__3")])
    assert [e["level"] for e in sent] == ["warning", "breach", "escalation"]
    [warning] = [context for level, context, _ in watch.sent if level == "warning"]
    notice = render_notice("deadline", {**warning, "org": organisation().raw["organisation"]})
    assert notice.subject.startswith("[SB-8-7] ถึงกำหนดแล้ว: ") and "ใกล้ครบกำหนด" not in notice.text


def test_nothing_for_a_step_finished_in_time(watch) -> None:
    runs = [_run("manual__4", "success", end=RAISED + timedelta(hours=2))]
    for day in range(1, 10):
        assert watch(RAISED + timedelta(days=day), runs) == []


def test_failed_send_is_retried_by_the_next_watch(watch, tmp_path) -> None:
    eng = watch.engine
    runs = [_run("manual__5")]

    def broken(*_: object) -> None:
        raise ConnectionRefusedError("smtp down")

    with pytest.raises(ConnectionRefusedError):
        process(runs, datetime(2026, 11, 24, 16, 5, tzinfo=BKK), CAL, LIMITS, eng, broken)
    assert [e["level"] for e in watch(datetime(2026, 11, 24, 16, 20, tzinfo=BKK), runs)] == ["warning"]


def test_summary_per_step() -> None:
    clocks = step_clocks(_run("manual__6", "success", end=datetime(2026, 11, 25, 12, 0, tzinfo=BKK))["tasks"],
                         LIMITS, CAL)
    [row] = summary_rows(clocks, datetime(2026, 11, 26, tzinfo=BKK), CAL)
    assert row["step"] == "director_decision" and row["met"] == "missed"
    assert row["due_at"] == datetime(2026, 11, 25, 10, 0, tzinfo=BKK)
    assert row["working_days_used"] == pytest.approx(1.25)


def test_a_step_whose_task_failed_is_summarised_as_failed_not_met() -> None:
    """A failed restore used to be summarised "met": the summary must say the step failed."""
    tasks = [
        {"task_id": steps.FIRST_RESTORE_TASK, "state": "success", "start_date": RAISED.isoformat(),
         "end_date": (RAISED + timedelta(minutes=1)).isoformat()},
        {"task_id": steps.TO_SERVER[0], "state": "failed",
         "start_date": (RAISED + timedelta(minutes=1)).isoformat(),
         "end_date": (RAISED + timedelta(minutes=2)).isoformat()},
        {"task_id": steps.RESTORE_FILE.task("verify_delivery"), "state": "upstream_failed",
         "start_date": None, "end_date": None},
    ]
    [row] = summary_rows(step_clocks(tasks, LIMITS, CAL), RAISED + timedelta(hours=1), CAL)
    assert (row["step"], row["met"]) == ("restore_file", "failed")


def test_a_step_skipped_whole_is_not_summarised_but_a_step_partly_skipped_is() -> None:
    """A rejected request skips steps 3-6 at once, and Airflow stamps the skipped tasks with a start and an
    end. Those steps did not happen: no "0.0 working days, met" row for them, which would also count as on
    time in the monthly report. Step 7 skips the result memo and sends the rejection memo: it did happen."""
    decided = RAISED + timedelta(hours=2)

    def at(task_id: str, state: str, start: datetime, minutes: int = 0) -> dict:
        return {"task_id": task_id, "state": state, "start_date": start.isoformat(),
                "end_date": (start + timedelta(minutes=minutes)).isoformat()}

    tasks = [at(steps.DIRECTOR_DECISION, "success", RAISED, 120),
             at(steps.FIRST_BACKUP_TASK, "skipped", decided), at(steps.FIRST_RESTORE_TASK, "skipped", decided),
             at(steps.NOTIFY_RESULT, "skipped", decided), at(steps.NOTIFY_REJECTION, "success", decided, 1)]
    rows = summary_rows(step_clocks(tasks, LIMITS, CAL), decided + timedelta(hours=1), CAL)
    assert [(r["step"], r["met"]) for r in rows] == [("director_decision", "met"), ("result_memo", "met")]


def test_every_limit_in_the_organisation_file_names_a_step() -> None:
    from sb87.timekeeping.deadlines import limits_from_config

    assert set(limits_from_config()) == {s.limit_key for s in steps.limited_steps()}
