"""Working-day time limits of SB-8-7's steps: clocks, warnings, breaches, escalations, summaries.

Airflow 3 has no per-task SLA (Deadline Alerts are DAG-level and wall-clock), so each step's clock
is read from its task instances: it starts when the step's first task starts (a decision's clock
when the decision is raised) and stops when its last task ends. Limits are in official working
days (`sb87.timekeeping.workdays`) and come from the organisation file's `step_limits_working_days`.

The watch DAG calls `watch()` every 15 minutes. For an open step it sends, once each:
a warning to the step's assignees at 75 % of the limit (at the latest with the alert, when the watch
missed that window), an alert to the IT Centre at the limit, and an escalation to the IT Centre
Director one working day after that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sb87 import notices
from sb87.airflow_api import open_runs_with_tasks
from sb87.people import acting
from sb87.records import store
from sb87.settings import Person, organisation, settings
from sb87.steps import STAFF, Step, limited_steps
from sb87.timekeeping.thai_dates import thai_date_short
from sb87.timekeeping.workdays import WorkingCalendar, default_calendar

WARN_AT = 0.75
# A step's clock stops when every task of the step is in one of these states.
TERMINAL_STATES = {"success", "failed", "skipped", "upstream_failed", "removed"}


@dataclass(frozen=True)
class StepClock:
    step: Step
    limit_days: float
    started: datetime
    ended: datetime | None
    due: datetime
    failed: bool = False  # a task of the step failed: the step is reported failed, not met or missed

    @property
    def open(self) -> bool:
        return self.ended is None


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def step_clocks(
    tasks: Iterable[Mapping[str, Any]], limits: Mapping[str, float], cal: WorkingCalendar
) -> list[StepClock]:
    """The clock of every step of one run that has started and was not skipped whole (task instances as the
    REST API gives them)."""
    clocks = []
    tasks = list(tasks)
    for step in limited_steps():
        if step.limit_key not in limits:
            continue
        mine = [t for t in tasks if step.owns(t["task_id"])]
        if mine and all(t.get("state") == "skipped" for t in mine):
            continue  # skipped whole (steps 3-6 of a rejected request): it did not happen, so it has no clock
        starts = [s for t in mine if (s := _instant(t.get("start_date")))]
        if not starts:
            continue
        started = min(starts)
        done = all(t.get("state") in TERMINAL_STATES for t in mine)
        ends = [e for t in mine if (e := _instant(t.get("end_date")))]
        ended = max(ends) if done and ends else None
        limit = float(limits[step.limit_key])
        failed = any(t.get("state") == "failed" for t in mine)
        clocks.append(StepClock(step, limit, started, ended, cal.add_working_days(started, limit), failed))
    return clocks


def levels_due(clock: StepClock, now: datetime, cal: WorkingCalendar) -> list[str]:
    """Which notices an open step has earned by `now` (the caller sends each level once)."""
    if not clock.open:
        return []
    # A watch that was down (or ran late) still tells the step's assignees, then alerts, then escalates:
    # each level is sent once, so a warning sent in time is not sent again.
    if now >= cal.add_working_days(clock.due, 1):
        return ["warning", "breach", "escalation"]
    if now >= clock.due:
        return ["warning", "breach"]
    if cal.fraction_used(clock.started, clock.limit_days, now) >= WARN_AT:
        return ["warning"]
    return []


def recipients(level: str, step: Step, assigned: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(name, e-mail) of whom a notice is meant for, whoever is in office (`routed` says who gets it)."""
    return [(name, email) for name, email, _ in _meant_for(level, step, assigned)]


def _meant_for(level: str, step: Step, assigned: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """Warnings go to the step's assignees: the staff ordered at step 4 once there are any, else the
    role; alerts to the IT Centre; escalations to the IT Centre Director. (name, e-mail, roster id or None)."""
    org = organisation()
    if level == "warning":
        return [(p.name, p.email, p.id) for p in responsible(step, assigned)]
    if level == "breach":
        return [(org["unit"], org["it_centre_email"], None)]
    return [(p.name, p.email, p.id) for p in org.with_role("it_director")]


def routed(level: str, step: Step, assigned: Iterable[str], now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """Who gets the notice at `now`, and why it is not the person it was meant for (one line each).

    A person away goes to the acting official of an order in force for their post, else to the first in
    the post's precedence who is in office (`sb87.people.acting.in_office`); with nobody at all in office,
    to the person anyway, so that nothing is lost.
    """
    raw = organisation().raw
    to: list[tuple[str, str]] = []
    why: list[str] = []
    for name, email, person in _meant_for(level, step, assigned):
        told = acting.in_office(raw, person, now) if person else []
        if not told:
            told_pairs = [(name, email)]
        else:
            told_pairs = [(t.name, t.email) for t in told]
            why += [t.why for t in told if t.why]
        to += [pair for pair in told_pairs if pair not in to]
    return to, list(dict.fromkeys(why))


def responsible(step: Step, assigned: Iterable[str] = ()) -> list[Person]:
    """Who must act on a step: the staff ordered at step 4 for the steps after it once there are any,
    else the people of the step's role (the decisions' role; staff for the automated steps)."""
    org = organisation()
    role = step.answered_by or STAFF
    people = [org.person(u) for u in assigned] if role == STAFF else []
    return people or org.with_role(role)


Sender = Callable[[str, Mapping[str, Any], list[tuple[str, str]]], None]


def process(
    runs: Iterable[Mapping[str, Any]],
    now: datetime,
    cal: WorkingCalendar,
    limits: Mapping[str, float],
    eng: Any,
    send: Sender,
) -> list[dict[str, Any]]:
    """Check every open run's steps at `now`; send and record each notice once. Returns what was sent."""
    sent = []
    for run in runs:
        for clock in step_clocks(run["tasks"], limits, cal):
            for level in levels_due(clock, now, cal):
                to, why = routed(level, clock.step, store.assigned_staff(eng, run["dag_run_id"]), now)
                if not store.claim_event(eng, run["dag_run_id"], clock.step.key, level, clock.started,
                                         clock.due, ", ".join(e for _, e in to)):
                    continue
                context = {"level": level, "step": clock.step.title, "limit_days": clock.limit_days,
                           "started": clock.started, "due": clock.due, "now": now,
                           "run_id": run["dag_run_id"], "note": run.get("note") or "", "why": why}
                send(level, context, to)
                store.mark_sent(eng, run["dag_run_id"], clock.step.key, level)
                sent.append({"run_id": run["dag_run_id"], "step": clock.step.key, "level": level})
    return sent


def summary_rows(clocks: Iterable[StepClock], now: datetime, cal: WorkingCalendar) -> list[dict[str, Any]]:
    """Per step: start, end, due, working days used, met / missed / open."""
    rows = []
    for c in clocks:
        end = c.ended or now
        if c.failed:
            met = "failed"
        else:
            met = "open" if c.open else ("met" if c.ended <= c.due else "missed")
        rows.append({"step": c.step.key, "started_at": c.started, "ended_at": c.ended, "due_at": c.due,
                     "working_days_used": round(cal.working_days_between(c.started, end), 3), "met": met})
    return rows


def limits_from_config() -> dict[str, float]:
    return {k: float(v) for k, v in organisation().raw["step_limits_working_days"].items()}


def watch(dag_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """One round of the watch over the open requests of `dag_id`, through Airflow's REST API."""
    def send(level: str, context: Mapping[str, Any], to: list[tuple[str, str]]) -> None:
        notices.send_notice_once(context["run_id"], "deadline", {**context, "org": _org()},
                         once_key=f"deadline {context['step']} {level}", to=to, conn_id=settings().smtp_conn_id)

    return process(open_runs_with_tasks(dag_id), now or datetime.now(UTC), default_calendar(),
                   limits_from_config(), store.project_engine(), send)


def _org() -> Mapping[str, Any]:
    return organisation().raw["organisation"]


def backstop_days(limits: Mapping[str, float]) -> int:
    """Calendar days for the run-level backstop: the sum of the limits, as weeks of five working
    days, plus a week for holidays such as Songkran (the per-step watch is the precise check)."""
    total = sum(limits.values())
    return int(-(-total * 7 // 5)) + 7


def request_overdue(context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """DeadlineAlert callback: a whole request has run past the backstop; tell the IT Centre."""
    run = (context or {}).get("dag_run") or {}
    org = organisation()
    now = datetime.now(UTC)
    started = _instant(run.get("queued_at")) or now
    notices.send_notice_once(
        run.get("run_id", "?"),
        "deadline",
        {"level": "breach", "step": "คำขอทั้งฉบับ (ขั้นตอนที่ 1–7)", "limit_days": sum(limits_from_config().values()),
         "started": started, "due": now, "now": now, "run_id": run.get("run_id", "?"), "note": run.get("note") or "",
         "org": org.raw["organisation"]},
        once_key="deadline request overdue",
        to=[(org["unit"], org["it_centre_email"])],
        conn_id=settings().smtp_conn_id,
    )


def due_from_now(limit_key: str) -> str:
    """`ครบกำหนด …` for a step starting now, as decisions and run notes show it (a template macro)."""
    due = default_calendar().add_working_days(datetime.now(UTC), limits_from_config()[limit_key])
    return f"ครบกำหนด {thai_date_short(due)}"
