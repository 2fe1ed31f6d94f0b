"""What the operations board shows: open requests, closed ones, deposited servers.

All the board's data access is here, behind three readers:

* `airflow_runs(session, now)` — the request DAG's runs (open, and closed within `CLOSED_DAYS`) with
  their task instances summed up per step and their waiting decisions, read through Airflow's own ORM
  session: the board runs inside the api-server, so four queries replace the 1 + N REST calls a client
  would make;
* `project_facts(eng, run_ids)` — from the project database (`sb87.records.store`): the staff ordered
  at step 4 and the receipt numbers (เลขรับ);
* `server_facts(eng)` — the freshness watch's policies, latest checks and open incidents.

Everything else is pure (`standings`, `open_row`, `closed_rows`, `server_rows`: records and a clock in, rows out),
so the tests compute the same rows from seeded records without a server. Times are instants (UTC)
in the records and Bangkok time in the rows (`sb87.timekeeping.thai_dates`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import case, false, func, or_, select, true
from sqlalchemy.engine import Engine

from sb87 import steps
from sb87.backup import drill, freshness
from sb87.people import acting
from sb87.records import store
from sb87.settings import Organisation, Person
from sb87.timekeeping.deadlines import TERMINAL_STATES, WARN_AT, StepClock, responsible, step_clocks
from sb87.timekeeping.thai_dates import thai_date, thai_date_short
from sb87.timekeeping.workdays import WorkingCalendar

CLOSED_DAYS = 90
#: Open requests a page of the board shows: as many as Airflow's own run list returns at most by default
#: (`maximum_page_limit`), so a page costs what a page of Airflow's list does.
PAGE_SIZE = 100
#: The fields of a request's form (the run's `conf`) the board and the report show: read alone, not the whole form.
CONF_FIELDS = ("agency", "memo_no", "memo_date", "subject", "services", "servers")
OPEN_RUN_STATES = ("queued", "running")
# A task in one of these states is where a request stands now.
ACTIVE_TASK_STATES = {"running", "queued", "scheduled", "awaiting_input", "deferred", "up_for_retry",
                      "up_for_reschedule", "restarting"}
FAILED_TASK_STATES = {"failed", "upstream_failed"}

# Lights, worst last.
GREEN, AMBER, RED, FAILED = "green", "amber", "red", "failed"
LIGHT_WORDS = {GREEN: "ทันเวลา", AMBER: "ใกล้ครบกำหนด", RED: "เกินกำหนด", FAILED: "ขั้นตอนล้มเหลว"}
NO_POLICY, NOT_CHECKED = "no_policy", "not_checked"
SERVICE_WORDS = {"backup": "ใช้ระบบสำรองข้อมูล", "restore": "ขอ Restore File"}
OUTCOME_WORDS = {"completed": "ดำเนินการเสร็จสิ้น", "rejected": "ไม่อนุมัติ", "failed": "ล้มเหลว",
                 "ended": "สิ้นสุด"}


@dataclass(frozen=True)
class Waiting:
    """A decision waiting for an answer (Airflow's human-in-the-loop record)."""

    task_id: str
    map_index: int
    assignees: tuple[str, ...]  # roster ids: the `id` of each assigned user
    subject: str
    since: datetime


@dataclass(frozen=True)
class RunRecord:
    """One request: its DAG run, task instances (as the REST API shapes them) and waiting decisions."""

    run_id: str
    state: str
    conf: Mapping[str, Any]
    started: datetime | None
    ended: datetime | None
    tasks: tuple[Mapping[str, Any], ...] = ()
    waiting: tuple[Waiting, ...] = ()


@dataclass(frozen=True)
class ProjectFacts:
    assigned: Mapping[str, Sequence[str]] = field(default_factory=dict)  # run id → staff ordered at step 4
    receipts: Mapping[str, str] = field(default_factory=dict)  # run id → เลขรับ "12/2569"


@dataclass(frozen=True)
class ServerFacts:
    policies: Mapping[str, Mapping[str, Any]]  # server id → its policy row (active or not)
    latest: Mapping[str, Mapping[str, Any]]  # server id → its newest freshness check
    incidents: Mapping[str, Sequence[Mapping[str, Any]]]  # server id → its open incidents
    drills: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # server id → its newest drill


# ----------------------------------------------------------------------------- readers


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def airflow_runs(session: Any, now: datetime, dag_id: str = steps.DAG_ID, since: datetime | None = None,
                 run_ids: Collection[str] | None = None) -> list[RunRecord]:
    """Open runs of the request DAG, and those started or closed since `since` (default: `CLOSED_DAYS`
    ago), with their steps' task instances summed up and their waiting decisions; of these only, when
    `run_ids` names some.

    A run's `tasks` here are one summary per step it has reached (`_step_summary`), then every failed task
    instance and the step-7 memo tasks that have a state, as they are: all the board reads of them. Reading every
    task instance of every run (39 a run) was most of the page's time (bench/board.py: 31 of 55 ms at 100
    open); PostgreSQL sums them up instead."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI

    wanted = _wanted(dag_id, since or now - timedelta(days=CLOSED_DAYS))
    if run_ids is not None:
        wanted &= DagRun.run_id.in_(run_ids)
    of_wanted = (DagRun.dag_id == TI.dag_id) & (DagRun.run_id == TI.run_id)
    runs = session.execute(select(DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.queued_at, DagRun.end_date,
                                  *(DagRun.conf[name] for name in CONF_FIELDS)).where(wanted)).all()
    tasks: dict[str, list[dict[str, Any]]] = {}
    step_no = _step_number(TI.task_id)
    at_work = func.max(case((TI.state.in_(ACTIVE_TASK_STATES), 1), else_=0))
    for t in session.execute(
        select(TI.run_id, step_no, func.min(TI.start_date), func.max(TI.end_date), at_work,
               func.min(case((TI.state.in_(TERMINAL_STATES), 1), else_=0)),
               func.min(case((TI.state == "skipped", 1), else_=0)))
        .join(DagRun, of_wanted).where(wanted, step_no.is_not(None)).group_by(TI.run_id, step_no)
        # A step not reached yet (no start, nothing at work) has no clock and is nowhere: not summed up.
        .having(func.min(TI.start_date).is_not(None) | (at_work == 1))
    ).all():
        run_id, number, started, ended, active, done, skipped = t
        tasks.setdefault(run_id, []).append(_step_summary(number, started, ended, bool(active), bool(done),
                                                          bool(skipped)))
    for t in session.execute(
        select(TI.run_id, TI.task_id, TI.map_index, TI.state, TI.start_date, TI.end_date)
        .join(DagRun, of_wanted)
        .where(wanted, TI.state.in_(FAILED_TASK_STATES) | (TI.task_id.in_(steps.RESULT.tasks) & TI.state.is_not(None)))
    ).all():
        tasks.setdefault(t.run_id, []).append({"task_id": t.task_id, "map_index": t.map_index, "state": t.state,
                                               "start_date": _iso(t.start_date), "end_date": _iso(t.end_date)})
    waiting: dict[str, list[Waiting]] = {}
    hitl_rows = session.execute(
        select(TI.run_id, TI.task_id, TI.map_index, HITLDetail.assignees, HITLDetail.subject, HITLDetail.created_at)
        .join(HITLDetail, HITLDetail.ti_id == TI.id)
        .where(TI.dag_id == dag_id, TI.state == "awaiting_input", HITLDetail.responded_at.is_(None),
               TI.run_id.in_(run_ids) if run_ids is not None else true())
    ).all()
    for h in hitl_rows:
        ids = tuple(str(u.get("id")) for u in h.assignees or () if isinstance(u, Mapping))
        waiting.setdefault(h.run_id, []).append(Waiting(h.task_id, h.map_index, ids, h.subject, h.created_at))
    return [RunRecord(r.run_id, str(r.state), {k: v for k, v in zip(CONF_FIELDS, r[5:], strict=True) if v is not None},
                      r.start_date or r.queued_at, r.end_date,
                      tuple(tasks.get(r.run_id, ())), tuple(waiting.get(r.run_id, ()))) for r in runs]


def _wanted(dag_id: str, since: datetime) -> Any:
    """SQL: the runs the board shows: open ones, and those started or closed since `since`."""
    from airflow.models.dagrun import DagRun

    return (DagRun.dag_id == dag_id) & (DagRun.state.in_(OPEN_RUN_STATES) | (DagRun.end_date >= since)
                                        | (DagRun.start_date >= since))


def _summed(*columns: Any) -> Any:
    """SQL: every row's hash of these columns, summed. A change to any one row changes the sum (but for a
    1-in-2³² collision)."""
    return func.coalesce(func.sum(func.hashtext(func.concat_ws("|", *columns))), 0)


def run_fingerprints(session: Any, now: datetime, dag_id: str = steps.DAG_ID) -> dict[str, tuple[int, int]]:
    """A fingerprint of each run `airflow_runs` reads, of everything it reads of it: the run's state and
    times, its task instances' states and times, its decisions asked and answered. It changes when any of
    them does, and not with a running task's heartbeat. PostgreSQL only (`hashtext`)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance as TI

    tasks = (select(TI.run_id, _summed(TI.task_id, TI.map_index, TI.state, TI.start_date, TI.end_date,
                                       HITLDetail.created_at, HITLDetail.responded_at).label("h"))
             .outerjoin(HITLDetail, HITLDetail.ti_id == TI.id).where(TI.dag_id == dag_id)
             .group_by(TI.run_id).subquery())
    rows = session.execute(
        select(DagRun.run_id, func.hashtext(func.concat_ws("|", DagRun.state, DagRun.start_date, DagRun.queued_at,
                                                           DagRun.end_date)), tasks.c.h)
        .outerjoin(tasks, tasks.c.run_id == DagRun.run_id)
        .where(_wanted(dag_id, now - timedelta(days=CLOSED_DAYS))))
    return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}


class ChangedRuns:
    """`airflow_runs` for the board, each run read again only when its fingerprint (`run_fingerprints`) has
    changed, and all of them once the last whole read is `max_age` old. Nearly all of a request's working
    days are spent waiting for a person, so a look at the board finds most runs as the last look found
    them; it reads again the few that moved. One per api-server worker. Fingerprints are taken before the
    read, so a run that changes during the read is read again by the next look. On a database other than
    PostgreSQL it reads everything every time."""

    def __init__(self, max_age: timedelta = timedelta(minutes=1)) -> None:
        self.max_age = max_age
        self._known: dict[str, tuple[tuple[int, int], RunRecord]] = {}
        self._whole_read_at: datetime | None = None

    def __call__(self, session: Any, now: datetime) -> tuple[list[RunRecord], int]:
        """The runs, and how many of them were read again."""
        if session.get_bind().dialect.name != "postgresql":
            runs = airflow_runs(session, now)
            return runs, len(runs)
        prints = run_fingerprints(session, now)
        at = self._whole_read_at
        known = self._known if at is not None and timedelta(0) <= now - at < self.max_age else {}
        changed = [r for r, f in prints.items() if r not in known or known[r][0] != f]
        whole = len(changed) == len(prints)
        fresh = {r.run_id: r for r in airflow_runs(session, now, run_ids=None if whole else changed)} if changed else {}
        self._known = {r: (f, fresh[r] if r in fresh else known[r][1]) for r, f in prints.items()
                       if r in fresh or r in known}
        if whole:
            self._whole_read_at = now
        return [record for _, record in self._known.values()], len(changed)


def _step_number(task_id: Any) -> Any:
    """SQL: the number of the step a task id belongs to, as `steps.step_of` decides (first step that owns it)."""
    whens = []
    for step in steps.STEPS:
        owns = task_id.in_(step.tasks) if step.tasks else false()
        if step.group:
            owns = or_(owns, task_id.startswith(f"{step.group}.", autoescape=True))
        whens.append((owns, step.number))
    return case(*whens, else_=None)


def _step_summary(number: int, started: datetime | None, ended: datetime | None, active: bool,
                  done: bool, skipped: bool = False) -> dict[str, Any]:
    """One step's task instances as one task instance: started with the first, ended with the last once all
    have ended, at work while any is, skipped when all were; what `step_clocks` and `current_step` read of them."""
    step = steps.STEPS[number - 1]
    return {"task_id": step.tasks[0] if step.tasks else f"{step.group}.*", "map_index": -1,
            "state": "running" if active else "skipped" if skipped else "success" if done else None,
            "start_date": _iso(_aware(started)), "end_date": _iso(_aware(ended))}


def airflow_runs_rest(since: datetime, dag_id: str = steps.DAG_ID) -> list[RunRecord]:
    """Runs started or ended since `since`, with their task instances, through Airflow's REST API: what a
    task (the monthly report's DAG) reads, as tasks may not use Airflow's database directly."""
    from sb87.airflow_api import api_session, run_path

    found: dict[str, dict[str, Any]] = {}
    with api_session() as http:
        for key in ("start_date_gte", "end_date_gte"):
            offset = 0
            while True:
                page = http.get(f"/api/v2/dags/{dag_id}/dagRuns",
                                params={key: since.isoformat(), "limit": 100, "offset": offset})
                page.raise_for_status()
                batch = page.json()["dag_runs"]
                found.update({r["dag_run_id"]: r for r in batch})
                offset += len(batch)
                if not batch or offset >= page.json()["total_entries"]:
                    break
        records = []
        for run_id, run in found.items():
            tis = http.get(f"{run_path(dag_id, run_id)}/taskInstances", params={"limit": 200})
            tis.raise_for_status()
            tasks = tuple({k: t.get(k) for k in ("task_id", "map_index", "state", "start_date", "end_date")}
                          for t in tis.json()["task_instances"])
            records.append(RunRecord(run_id, str(run["state"]), run.get("conf") or {},
                                     _instant(run.get("start_date") or run.get("queued_at")),
                                     _instant(run.get("end_date")), tasks))
    return records


def run_exists(session: Any, run_id: str, dag_id: str = steps.DAG_ID) -> bool:
    from airflow.models.dagrun import DagRun

    found = session.execute(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
    return found is not None


def project_facts(eng: Engine, run_ids: Iterable[str]) -> ProjectFacts:
    """Who was ordered at step 4 and the receipt number, for these runs."""
    ids = list(run_ids)
    assigned: dict[str, list[str]] = {}
    receipts: dict[str, str] = {}
    if not ids:
        return ProjectFacts()
    with eng.connect() as db:
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for a in db.execute(select(store.assignments.c.run_id, store.assignments.c.user_id)
                                .where(store.assignments.c.run_id.in_(chunk))
                                .order_by(store.assignments.c.user_id)):
                assigned.setdefault(a.run_id, []).append(a.user_id)
            for r in db.execute(select(store.register).where(store.register.c.run_id.in_(chunk),
                                                             store.register.c.kind == "in")):
                receipts[r.run_id] = f"{r.number}/{r.year_be}"
    return ProjectFacts(assigned, receipts)


def server_facts(eng: Engine) -> ServerFacts:
    """Every policy the freshness watch knows, each server's newest check, the open incidents."""
    newest = (select(freshness.checks.c.server_id, func.max(freshness.checks.c.checked_at).label("at"))
              .group_by(freshness.checks.c.server_id).subquery())
    with eng.connect() as db:
        policies = {p.server_id: dict(p._mapping) for p in db.execute(select(freshness.policies))}
        latest = {c.server_id: dict(c._mapping) for c in db.execute(
            select(freshness.checks).join(newest, (newest.c.server_id == freshness.checks.c.server_id)
                                          & (newest.c.at == freshness.checks.c.checked_at)))}
        incidents: dict[str, list[dict[str, Any]]] = {}
        for i in db.execute(select(freshness.incidents).where(freshness.incidents.c.recovered_at.is_(None))
                            .order_by(freshness.incidents.c.opened_at)):
            incidents.setdefault(i.server_id, []).append(dict(i._mapping))
        newest_drill = (select(drill.drills.c.server_id, func.max(drill.drills.c.id).label("id"))
                        .group_by(drill.drills.c.server_id).subquery())
        drills = {d.server_id: dict(d._mapping) for d in db.execute(
            select(drill.drills).join(newest_drill, newest_drill.c.id == drill.drills.c.id))}
    return ServerFacts(policies, latest, incidents, drills)


# ----------------------------------------------------------------------------- rows (pure)


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@lru_cache(maxsize=4096)
def _step(task_id: str) -> steps.Step | None:
    """`steps.step_of`, once per task id: 500 open requests carry the same 37 task ids."""
    return steps.step_of(task_id)


def _person(people: Mapping[str, Person], user_id: str) -> dict[str, str]:
    p = people.get(user_id)
    if p is None:
        return {"id": user_id, "name": user_id, "position": ""}
    return {"id": p.id, "name": p.full_name, "position": p.position or p.name}


def _with_acting(people: Mapping[str, Person], org: Organisation, actor_ids: Iterable[str],
                 now: datetime) -> list[dict[str, str]]:
    """Who must act: the decision's principals, then whoever acts for one of them under an order in force
    now (position: the capacity, e.g. "รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ")."""
    principals, _ = acting.split_assignees(actor_ids)
    actors = {u: _person(people, u) for u in dict.fromkeys(principals)}
    for principal in list(actors):
        for official in acting.acting_for_in(org.raw, principal, now):
            actors.setdefault(official.person, {**_person(people, official.person), "position": official.capacity})
    return list(actors.values())


def current_step(run: RunRecord, clocks: Sequence[StepClock]) -> steps.Step | None:
    """Where the request stands: the furthest step with a task at work now, else the furthest open
    clock, else the furthest step that has started."""
    active = [s for t in run.tasks if t.get("state") in ACTIVE_TASK_STATES and (s := _step(t["task_id"]))]
    if active:
        return max(active, key=lambda s: s.number)
    open_clocks = [c.step for c in clocks if c.open]
    if open_clocks:
        return max(open_clocks, key=lambda s: s.number)
    started = [s for t in run.tasks if t.get("start_date") and (s := _step(t["task_id"]))]
    return max(started, key=lambda s: s.number) if started else steps.INTAKE


def _started_steps_tasks(run: RunRecord) -> list[Mapping[str, Any]]:
    """The tasks of the steps that have started: all `step_clocks` looks at (a step without a start has
    no clock), so it need not scan the tasks of steps not reached yet."""
    started = {s.number for t in run.tasks if t.get("start_date") and (s := _step(t["task_id"]))}
    return [t for t in run.tasks if (s := _step(t["task_id"])) and s.number in started]


def light(clock: StepClock | None, now: datetime, cal: WorkingCalendar, failed: bool) -> str:
    """Failed when a task failed; red when the step's working-day limit has passed; amber from 75 % of it."""
    if failed:
        return FAILED
    if clock is None:
        return GREEN
    if now >= clock.due:
        return RED
    return AMBER if cal.fraction_used(clock.started, clock.limit_days, now) >= WARN_AT else GREEN


def _unit(conf: Mapping[str, Any]) -> str:
    """The requesting unit, as the trigger form names it."""
    return str(conf.get("agency", ""))


def _memo(conf: Mapping[str, Any]) -> dict[str, Any]:
    memo_date = conf.get("memo_date")
    try:
        memo_thai = thai_date(memo_date) if memo_date else ""
    except ValueError:
        memo_thai = str(memo_date)
    return {
        "unit": _unit(conf),
        "memo_no": str(conf.get("memo_no", "")),
        "memo_date": memo_date,
        "memo_date_thai": memo_thai,
        "subject": str(conf.get("subject", "")),
        "services": [SERVICE_WORDS.get(s, str(s)) for s in conf.get("services") or ()],
        "servers": [str(s.get("hostname", "")) for s in conf.get("servers") or () if isinstance(s, Mapping)],
    }


@dataclass(frozen=True)
class Standing:
    """Where one open request stands: what sorting, counting and filtering the open list need. The rest of a
    row (`open_row`) is drawn only for the requests on the page shown."""
    run: RunRecord
    step: steps.Step | None
    clock: StepClock | None
    failed_tasks: tuple[str, ...]
    actors: tuple[dict[str, str], ...]  # who must act now, acting officials included (`_with_acting`)
    light: str


def standings(runs: Iterable[RunRecord], facts: ProjectFacts, now: datetime, cal: WorkingCalendar,
              limits: Mapping[str, float], org: Organisation) -> list[Standing]:
    """Every open request's step, clock, light and who must act; the worst first, then the soonest due."""
    out = []
    people = {p.id: p for p in org.people}
    who_acts: dict[tuple[int, tuple[str, ...]], tuple[str, ...]] = {}  # (step, staff ordered) → who must act
    named: dict[tuple[str, ...], tuple[dict[str, str], ...]] = {}  # assignees → them and who acts for them
    for run in runs:
        if run.state not in OPEN_RUN_STATES:
            continue
        clocks = step_clocks(_started_steps_tasks(run), limits, cal)
        step = current_step(run, clocks)
        # The current step's clock; a failed step's clock has stopped where it failed.
        clock = next((c for c in clocks if step and c.step.number == step.number), None)
        failed_tasks = tuple(sorted(t["task_id"] for t in run.tasks if t.get("state") in FAILED_TASK_STATES))
        if run.waiting:
            actor_ids = tuple(dict.fromkeys(u for w in run.waiting for u in w.assignees))
        elif step is not None:
            key = (step.number, tuple(facts.assigned.get(run.run_id, ())))
            if key not in who_acts:
                who_acts[key] = tuple(p.id for p in responsible(step, key[1]))
            actor_ids = who_acts[key]
        else:
            actor_ids = ()
        if actor_ids not in named:
            named[actor_ids] = tuple(_with_acting(people, org, actor_ids, now))
        out.append(Standing(run, step, clock, failed_tasks, named[actor_ids],
                            light(clock, now, cal, bool(failed_tasks))))
    order = {FAILED: 0, RED: 1, AMBER: 2, GREEN: 3}
    out.sort(key=lambda s: (order[s.light], s.clock.due if s.clock else datetime.max.replace(tzinfo=UTC),
                            s.run.run_id))
    return out


def open_row(standing: Standing, facts: ProjectFacts, now: datetime, cal: WorkingCalendar) -> dict[str, Any]:
    """One open request as the board shows it: where it stands, who must act, its due time and light."""
    run, step, clock = standing.run, standing.step, standing.clock
    used = cal.working_days_between(clock.started, clock.ended or now) if clock else None
    decision = run.waiting[0] if run.waiting else None
    return {
        "run_id": run.run_id,
        **_memo(run.conf),
        "receipt": facts.receipts.get(run.run_id, ""),
        "received_at": _iso(run.started),
        "received_thai": thai_date_short(run.started) if run.started else "",
        "step": step.number if step else None,
        "step_title": step.title if step else "",
        "actors": [dict(a) for a in standing.actors],
        "limit_days": clock.limit_days if clock else None,
        "due_at": _iso(clock.due) if clock else None,
        "due_thai": thai_date_short(clock.due) if clock else "",
        "days_used": round(used, 2) if used is not None else None,
        "days_left": round(clock.limit_days - used, 2) if clock and used is not None else None,
        "light": standing.light,
        "light_words": LIGHT_WORDS[standing.light],
        "failed_tasks": list(standing.failed_tasks),
        "decision": ({"task_id": decision.task_id, "map_index": decision.map_index, "subject": decision.subject}
                     if decision else None),
    }


def outcome(run: RunRecord) -> tuple[str, steps.Step | None]:
    """How a closed request ended: completed, rejected (the rejection memo went out), or failed (at which step)."""
    states = {t["task_id"]: t.get("state") for t in run.tasks}
    failed = [t["task_id"] for t in run.tasks if t.get("state") == "failed"]
    if run.state == "failed" or failed:
        first = min((s for t in failed if (s := _step(t))), key=lambda s: s.number, default=None)
        return "failed", first
    if states.get(steps.NOTIFY_REJECTION) == "success":
        return "rejected", steps.DIRECTOR
    if run.state == "success":
        return "completed", None
    return "ended", None


def closed_rows(runs: Iterable[RunRecord], facts: ProjectFacts, now: datetime) -> list[dict[str, Any]]:
    """Requests closed within `CLOSED_DAYS` of `now`, newest first, with their outcome."""
    since = now - timedelta(days=CLOSED_DAYS)
    rows = []
    for run in runs:
        if run.state in OPEN_RUN_STATES or run.ended is None or run.ended < since:
            continue
        result, at = outcome(run)
        rows.append({
            "run_id": run.run_id,
            **_memo(run.conf),
            "receipt": facts.receipts.get(run.run_id, ""),
            "received_at": _iso(run.started),
            "received_thai": thai_date_short(run.started) if run.started else "",
            "ended_at": _iso(run.ended),
            "ended_thai": thai_date_short(run.ended),
            "outcome": result,
            "outcome_words": OUTCOME_WORDS[result] + (f" ({at.title})" if result == "failed" and at else ""),
        })
    rows.sort(key=lambda r: r["ended_at"], reverse=True)
    return rows


def _age_words(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24} วัน {hours % 24} ชม." if hours >= 24 else f"{hours} ชม."


def server_rows(inventory: Iterable[Mapping[str, Any]], facts: ServerFacts, now: datetime) -> list[dict[str, Any]]:
    """One row per server of the inventory: its policy, newest snapshot and age, last scheduled run, light."""
    rows = []
    for entry in inventory:
        sid = entry["id"]
        policy = facts.policies.get(sid)
        check = facts.latest.get(sid)
        open_incidents = facts.incidents.get(sid, ())
        snapshot = _aware(check.get("last_snapshot_at")) if check else None
        if not policy or not policy.get("active"):
            state, row_light = NO_POLICY, "none"
        elif check is None:
            state, row_light = NOT_CHECKED, AMBER
        else:
            state = check["state"]
            row_light = RED if state in freshness.BAD else GREEN
        if open_incidents:
            row_light = RED
        last_exit = check.get("last_exit") if check else None
        drilled = facts.drills.get(sid)
        if drilled and drilled["state"] != "passed" and policy and policy.get("active"):
            row_light = RED  # a failed or not-run drill: the backups are not proven restorable
        rows.append({
            "server_id": sid,
            "hostname": entry.get("hostname", ""),
            "unit": _unit(entry),
            "schedule": policy.get("schedule") if policy else None,
            "policy_run_id": policy.get("run_id") if policy else None,
            "state": state,
            "light": row_light,
            "checked_at": _iso(_aware(check["checked_at"])) if check else None,
            "checked_thai": thai_date_short(_aware(check["checked_at"])) if check else "",
            "last_snapshot_at": _iso(snapshot),
            "last_snapshot_thai": thai_date_short(snapshot) if snapshot else "",
            "snapshot_age_hours": round((now - snapshot).total_seconds() / 3600, 1) if snapshot else None,
            "snapshot_age_words": _age_words(now - snapshot) if snapshot else "",
            "last_exit": last_exit,
            "detail": check.get("detail", "") if check else "",
            "drill": {"state": drilled["state"], "at": _iso(_aware(drilled["finished_at"])),
                      "at_thai": thai_date_short(_aware(drilled["finished_at"])),
                      "estimated_full_restore_hours": round(drilled["estimated_full_restore_seconds"] / 3600, 2)
                      if drilled.get("estimated_full_restore_seconds") is not None else None} if drilled else None,
            "incidents": [{"key": i["incident_key"], "state": i["state"], "opened_at": _iso(_aware(i["opened_at"])),
                           "opened_thai": thai_date_short(_aware(i["opened_at"]))} for i in open_incidents],
        })
    order = {RED: 0, AMBER: 1, "none": 2, GREEN: 3}
    rows.sort(key=lambda r: (order[r["light"]], r["unit"], r["hostname"]))
    return rows


# ----------------------------------------------------------------------------- the whole board


def known_units(runs: Iterable[RunRecord], inventory: Iterable[Mapping[str, Any]],
                suggestions: Iterable[str] = ()) -> set[str]:
    """Units a filter may name: those of the requests on the board, of the inventory, and the form's suggestions."""
    units = {_unit(r.conf) for r in runs} | {_unit(e) for e in inventory}
    return (units | set(suggestions)) - {""}


def board(runs: Sequence[RunRecord], facts: ProjectFacts, servers: ServerFacts,
          inventory: Sequence[Mapping[str, Any]], now: datetime, cal: WorkingCalendar,
          limits: Mapping[str, float], org: Organisation, *, unit: str | None = None, step: int | None = None,
          person: str | None = None, page: int = 1, per_page: int | None = None) -> dict[str, Any]:
    """The board's three tables: the open requests filtered and shown a page at a time (the worst first), the
    closed ones by unit only. The counts are of every open request, whatever the filters and the page."""
    per_page = per_page or PAGE_SIZE
    standing = standings(runs, facts, now, cal, limits, org)
    matching = [s for s in standing
                if (unit is None or _unit(s.run.conf) == unit)
                and (step is None or (s.step is not None and s.step.number == step))
                and (person is None or any(a["id"] == person for a in s.actors))]
    shown = matching[(page - 1) * per_page: page * per_page]
    return {
        "now": now.isoformat(),
        "now_thai": thai_date_short(now),
        "open": [open_row(s, facts, now, cal) for s in shown],
        "open_total": len(standing),
        "open_matching": len(matching),
        "page": page,
        "pages": max(1, -(-len(matching) // per_page)),
        "per_page": per_page,
        "closed": [r for r in closed_rows(runs, facts, now) if unit is None or r["unit"] == unit],
        "servers": [s for s in server_rows(inventory, servers, now) if unit is None or s["unit"] == unit],
        "counts": {lt: sum(1 for s in standing if s.light == lt) for lt in (GREEN, AMBER, RED, FAILED)},
    }
