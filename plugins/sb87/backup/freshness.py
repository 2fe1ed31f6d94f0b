"""The backup-freshness watch: somebody notices the day a deposited server's backups stop.

For every active policy: the age of its newest snapshot against its schedule plus a grace period,
the exit status of its last scheduled run (recorded by the backup script on the server), and weekly
a `restic check --read-data-subset=n/4` of its repository. An overdue or failed backup opens an
incident and alerts the IT Centre once; the incident's recovery alerts once more. Every check and
incident is kept in the project's database (tables defined here on `sb87.records.store.metadata`, so
`store.engine(url)` creates them).

`assess` and `plan` are pure (a clock and observations in, decisions out); `watch` applies them to
the database and the mail; `observe` gathers the observations over SSH.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Column, DateTime, Integer, String, Table, UniqueConstraint, insert, select, update
from sqlalchemy.engine import Engine

from sb87.backup.backends import _trim_nanoseconds, parse_results, render_script
from sb87.backup.operator import run_script
from sb87.notices.outbox import send_notice_once
from sb87.records.store import metadata
from sb87.settings import organisation

OK, OVERDUE, FAILED, CHECK_FAILED, NOT_YET_DUE = "ok", "overdue", "failed", "check_failed", "not_yet_due"
BAD = (OVERDUE, FAILED, CHECK_FAILED)
BANGKOK = ZoneInfo("Asia/Bangkok")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Python's weekday() order

policies = Table(
    "sb87_backup_policies",
    metadata,
    Column("server_id", String(64), nullable=False),
    Column("hostname", String(253), nullable=False),
    Column("agency", String(300), nullable=False, default=""),
    Column("ssh_conn_id", String(250), nullable=False),
    Column("schedule", String(40), nullable=False),
    Column("run_id", String(250), nullable=False),  # the request that created (or last changed) it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("removed_at", DateTime(timezone=True)),
    UniqueConstraint("server_id", name="sb87_backup_policies_server"),
)

checks = Table(
    "sb87_freshness_checks",
    metadata,
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("server_id", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("last_snapshot_at", DateTime(timezone=True)),
    Column("last_exit", Integer),
    Column("due_at", DateTime(timezone=True)),
    Column("detail", String(1000), nullable=False, default=""),
)

incidents = Table(
    "sb87_freshness_incidents",
    metadata,
    Column("incident_key", String(250), nullable=False),
    Column("server_id", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("recovered_at", DateTime(timezone=True)),
    UniqueConstraint("incident_key", name="sb87_freshness_incidents_key"),
)


# ----------------------------------------------------------------------------- pure logic


def previous_due(schedule: str, now: datetime, tz: ZoneInfo) -> datetime:
    """The newest scheduled instant at or before `now` (`daily 01:00`, `weekly sun 02:30`, `monthly 1 03:00`),
    in the schedule's own time zone (the servers' cron runs in Thai time)."""
    words = schedule.split()
    hour, minute = (int(x) for x in words[-1].split(":"))
    local = now.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if words[0] == "daily":
        if candidate > local:
            candidate -= timedelta(days=1)
    elif words[0] == "weekly":
        back = (local.weekday() - WEEKDAYS.index(words[1])) % 7
        candidate -= timedelta(days=back)
        if candidate > local:
            candidate -= timedelta(days=7)
    elif words[0] == "monthly":
        day = int(words[1])
        candidate = candidate.replace(day=day)
        if candidate > local:
            month, year = (local.month - 1, local.year) if local.month > 1 else (12, local.year - 1)
            candidate = candidate.replace(year=year, month=month)
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return candidate


@dataclass(frozen=True)
class Observation:
    """What the watch saw of one server: newest snapshot, last scheduled run, the weekly check."""

    server_id: str
    last_snapshot_at: datetime | None
    last_run: Mapping[str, Any] | None = None  # last-run.json of the server: {"exit", "finished", ...}
    check_ok: bool | None = None  # None: no data check this time
    unreachable: str = ""  # the server could not be asked (its last run is then unknown)


@dataclass(frozen=True)
class Assessment:
    server_id: str
    state: str
    due_at: datetime | None
    reasons: tuple[str, ...] = field(default_factory=tuple)
    last_snapshot_at: datetime | None = None
    last_exit: int | None = None


def assess(now: datetime, policy: Mapping[str, Any], seen: Observation, grace: timedelta,
           tz: ZoneInfo = BANGKOK) -> Assessment:
    """One server's state now. A backup is overdue when the newest snapshot is older than the last
    scheduled time that is more than `grace` ago; failed when the last scheduled run exited non-zero
    (even if an older snapshot is still fresh); check_failed when the weekly data check failed."""
    due = previous_due(policy["schedule"], now - grace, tz)
    last_exit = None if not seen.last_run else int(seen.last_run.get("exit", 0))
    reasons: list[str] = []
    state = OK
    if due < policy["created_at"]:
        state = NOT_YET_DUE
    elif seen.last_snapshot_at is None or seen.last_snapshot_at < due:
        state = OVERDUE
        last = seen.last_snapshot_at
        age = "ไม่เคยมี snapshot" if last is None else f"snapshot ล่าสุด {last.isoformat()}"
        reasons.append(f"ไม่มีการสำรองข้อมูลตามรอบ {due.isoformat()} ({age})")
    if last_exit not in (None, 0):
        state = FAILED if state in (OK, NOT_YET_DUE) else state
        reasons.append(f"การสำรองข้อมูลตามตารางครั้งล่าสุดจบด้วยรหัส {last_exit}")
    if seen.check_ok is False:
        state = CHECK_FAILED if state in (OK, NOT_YET_DUE) else state
        reasons.append("restic check --read-data-subset พบข้อผิดพลาดในคลังข้อมูล")
    if seen.unreachable:
        reasons.append(f"ติดต่อเครื่องไม่ได้: {seen.unreachable}")
    return Assessment(seen.server_id, state, due, tuple(reasons), seen.last_snapshot_at, last_exit)


@dataclass(frozen=True)
class Alert:
    kind: str  # "incident" | "recovery"
    server_id: str
    incident_key: str
    assessment: Assessment


def plan(open_incidents: Mapping[str, str], assessments: Sequence[Assessment], now: datetime) -> list[Alert]:
    """Which alerts to send: one when a server goes bad (opening an incident), one when it recovers.
    `open_incidents` maps server id → incident key of its open incident."""
    alerts = []
    for a in assessments:
        key = open_incidents.get(a.server_id)
        if a.state in BAD and key is None:
            alerts.append(Alert("incident", a.server_id, f"freshness:{a.server_id}:{now.isoformat()}", a))
        elif a.state not in BAD and key is not None:
            alerts.append(Alert("recovery", a.server_id, key, a))
    return alerts


def weekly_subset(now: datetime) -> str:
    """The share of data the weekly check reads: a quarter a week, all of it every four weeks."""
    return f"{now.isocalendar().week % 4 + 1}/4"


# ----------------------------------------------------------------------------- database


def record_policy(eng: Engine, *, server_id: str, hostname: str, agency: str, ssh_conn_id: str, schedule: str,
                  run_id: str, now: datetime) -> None:
    """Register (or update) a server's active policy once create_policy/client_policy succeeded."""
    values = {"hostname": hostname, "agency": agency, "ssh_conn_id": ssh_conn_id, "schedule": schedule,
              "run_id": run_id, "active": True, "removed_at": None}
    with eng.begin() as db:
        found = db.execute(select(policies.c.server_id).where(policies.c.server_id == server_id)).first()
        if found:
            db.execute(update(policies).where(policies.c.server_id == server_id).values(**values))
        else:
            db.execute(insert(policies).values(server_id=server_id, created_at=now, **values))


def deactivate_policy(eng: Engine, server_id: str, now: datetime) -> None:
    with eng.begin() as db:
        db.execute(update(policies).where(policies.c.server_id == server_id).values(active=False, removed_at=now))


def active_policies(eng: Engine) -> list[dict[str, Any]]:
    with eng.connect() as db:
        return [dict(r._mapping) for r in db.execute(select(policies).where(policies.c.active.is_(True))
                                                     .order_by(policies.c.server_id))]


def open_incidents(eng: Engine) -> dict[str, str]:
    with eng.connect() as db:
        rows = db.execute(select(incidents.c.server_id, incidents.c.incident_key)
                          .where(incidents.c.recovered_at.is_(None))).all()
    return {r.server_id: r.incident_key for r in rows}


def incident_rows(eng: Engine) -> list[dict[str, Any]]:
    with eng.connect() as db:
        return [dict(r._mapping) for r in db.execute(select(incidents).order_by(incidents.c.opened_at))]


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# ----------------------------------------------------------------------------- the watch


Send = Callable[[Alert, Mapping[str, Any]], None]


def watch(eng: Engine, now: datetime, observations: Mapping[str, Observation], send: Send,
          grace: timedelta, tz: ZoneInfo = BANGKOK) -> list[Alert]:
    """Assess every active policy, record the checks, open/close incidents and send their alerts.

    The incident row is written before its alert is sent (and the sender is `send_notice_once` keyed
    by the incident), so an overlapping or retried watch never alerts twice for one incident.
    """
    active = active_policies(eng)
    results = []
    for policy in active:
        policy = {**policy, "created_at": _aware(policy["created_at"])}
        seen = observations.get(policy["server_id"]) or Observation(policy["server_id"], None,
                                                                    unreachable="ไม่ได้ข้อมูลจากการตรวจ")
        results.append((policy, assess(now, policy, seen, grace, tz)))
    with eng.begin() as db:
        for _policy, a in results:
            db.execute(insert(checks).values(
                checked_at=now, server_id=a.server_id, state=a.state, last_snapshot_at=a.last_snapshot_at,
                last_exit=a.last_exit, due_at=a.due_at, detail="; ".join(a.reasons)[:1000]))
    alerts = plan(open_incidents(eng), [a for _, a in results], now)
    by_id = {p["server_id"]: p for p, _ in results}
    for alert in alerts:
        with eng.begin() as db:
            if alert.kind == "incident":
                db.execute(insert(incidents).values(incident_key=alert.incident_key, server_id=alert.server_id,
                                                    state=alert.assessment.state, opened_at=now))
            else:
                db.execute(update(incidents).where(incidents.c.incident_key == alert.incident_key)
                           .values(recovered_at=now))
        send(alert, {"kind": alert.kind, "policy": by_id[alert.server_id], "assessment": alert.assessment,
                     "now": now})
    return alerts


def observations_from_results(freshness_results: Sequence[Mapping[str, Any]],
                              last_runs: Mapping[str, Mapping[str, Any] | str]) -> dict[str, Observation]:
    """Observations from the backup host's `freshness` results and each server's `last_run` result (or
    the error text when the server could not be reached)."""
    out = {}
    for r in freshness_results:
        latest = r.get("latest") or []
        times = [datetime.fromisoformat(_trim(s["time"])) for s in latest]
        run = last_runs.get(r["id"])
        out[r["id"]] = Observation(
            r["id"], max(times) if times else None,
            last_run=run.get("last_run") if isinstance(run, Mapping) else None,
            check_ok=r.get("check_ok"), unreachable=run if isinstance(run, str) else "")
    return out


def _trim(stamp: str) -> str:
    return _trim_nanoseconds(stamp)


def observe(policy_rows: Sequence[Mapping[str, Any]], run_backup_host: Callable[[str], str],
            run_on_server: Callable[[str, str], str], read_data_subset: str | None = None) -> dict[str, Observation]:
    """Ask the backup host (one `freshness` script for all servers) and each server (`last_run`, through
    its own connection). `run_backup_host(command)` and `run_on_server(conn_id, command)` return stdout."""
    if not policy_rows:
        return {}
    request = {"servers": [{"id": p["server_id"], "hostname": p["hostname"], "paths": [], "address": ""}
                           for p in policy_rows]}
    extra = {"read_data_subset": read_data_subset} if read_data_subset else {}
    fresh = [r for r in parse_results(run_backup_host(render_script("freshness", request, "freshness", **extra)))
             if r.get("action") == "freshness"]
    last_runs: dict[str, Mapping[str, Any] | str] = {}
    for p in policy_rows:
        try:
            script = render_script("last_run", request, "freshness", server=p["server_id"])
            out = run_on_server(p["ssh_conn_id"], script)
            [result] = [r for r in parse_results(out) if r.get("action") == "last_run"]
            last_runs[p["server_id"]] = result
        except Exception as exc:  # an unreachable server is an observation, not a crash
            last_runs[p["server_id"]] = f"{type(exc).__name__}: {exc}"[:300]
    return observations_from_results(fresh, last_runs)


def ssh_runner(conn_id: str, timeout: int = 3600) -> Callable[[str], str]:
    """Run a command through an Airflow SSH connection (host key checked there); stdout, or raise."""
    return lambda command: run_script(conn_id, command, timeout)


def email_sender(conn_id: str, to: Sequence[tuple[str, str]]) -> Send:
    """Alerts as `freshness` e-mails through `sb87.notices.outbox.send_notice_once`, once per incident and kind."""
    def send(alert: Alert, context: Mapping[str, Any]) -> None:
        send_notice_once(alert.incident_key, "freshness", {**context, "org": organisation().raw["organisation"]},
                         once_key=f"freshness-{alert.kind}", to=list(to), conn_id=conn_id)
    return send
