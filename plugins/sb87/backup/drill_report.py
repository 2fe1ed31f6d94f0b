"""The monthly drill report to each unit that asked for it (issue 25, item 4): one paragraph saying its
servers were backed up and proven restorable, with dates — the evidence units are asked for in audits.

A unit opts in in the organisation file (`drill_reports`: {"agency", "email", "name"}, checked by
`sb87.settings`). `unit_reports` (pure) builds each unit's report from the drill records (`sb87_drills`)
and the active policies (their `agency`); `send_reports` e-mails it through the outbox, once per unit and
month, copied to the IT Centre. A server is called proven restorable only when its latest drill of the
month passed; one whose drill failed or did not run this month is said to be so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sb87.backup.drill import NOT_RUN, PASSED
from sb87.timekeeping.thai_dates import MONTHS, bangkok_date, buddhist_year

KIND = "drill_report"


@dataclass(frozen=True)
class ServerLine:
    server_id: str
    hostname: str
    state: str  # this month's latest drill: passed | failed | not_run (also when no drill ran this month)
    drilled_at: datetime | None  # this month's latest drill, whatever its state
    snapshot_at: datetime | None  # the snapshot that drill restored from
    last_passed_at: datetime | None  # the newest passed drill up to the month's end (this month or before)
    last_passed_snapshot_at: datetime | None

    @property
    def proven(self) -> bool:
        return self.state == PASSED


@dataclass(frozen=True)
class UnitReport:
    agency: str
    name: str
    email: str
    month: str  # yyyy-mm
    servers: tuple[ServerLine, ...]

    @property
    def proven(self) -> list[ServerLine]:
        return [s for s in self.servers if s.proven]

    @property
    def unproven(self) -> list[ServerLine]:
        return [s for s in self.servers if not s.proven]


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the drill records are UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _month_of(value: datetime) -> str:
    # The month in Thailand: a drill at 01:00 on the 1st in Bangkok is still the previous day in UTC.
    return month_key(bangkok_date(_utc(value)))


def unit_reports(rows: Sequence[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]],
                 units: Sequence[Mapping[str, Any]], month: str) -> list[UnitReport]:
    """Each opted-in unit's report for `month` (yyyy-mm): its servers with an active policy, in policy order,
    each with its latest drill of the month and its newest passed drill up to then. A unit with no server
    under an active policy gets no report (there is nothing to vouch for)."""
    reports = []
    for unit in units:
        lines = []
        for policy in (p for p in policies if p.get("agency") == unit["agency"]):
            mine = sorted((r for r in rows if r["server_id"] == policy["server_id"]
                           and _month_of(r["started_at"]) <= month), key=lambda r: (_utc(r["started_at"]), r["id"]))
            this_month = [r for r in mine if _month_of(r["started_at"]) == month]
            latest = this_month[-1] if this_month else None
            passed = [r for r in mine if r["state"] == PASSED]
            last = passed[-1] if passed else None
            lines.append(ServerLine(
                server_id=policy["server_id"], hostname=policy["hostname"],
                state=latest["state"] if latest else NOT_RUN,
                drilled_at=_utc(latest["started_at"]) if latest else None,
                snapshot_at=_utc(latest["snapshot_at"]) if latest else None,
                last_passed_at=_utc(last["started_at"]) if last else None,
                last_passed_snapshot_at=_utc(last["snapshot_at"]) if last else None))
        if lines:
            reports.append(UnitReport(unit["agency"], unit.get("name") or unit["agency"], unit["email"], month,
                                      tuple(lines)))
    return reports


def context_of(report: UnitReport, org: Mapping[str, Any], today: date) -> dict[str, Any]:
    """The `drill_report` templates' context."""
    year, month = (int(part) for part in report.month.split("-"))
    return {"report": report, "proven": report.proven, "unproven": report.unproven,
            "month_th": f"{MONTHS[month - 1]} {buddhist_year(date(year, month, 1))}", "today": today,
            "org": dict(org)}


def send_reports(reports: Sequence[UnitReport], org: Mapping[str, Any], today: date, *,
                 cc: Sequence[tuple[str, str]], conn_id: str) -> list[str]:
    """E-mail each report through the outbox, once per unit and month whichever run sends it (the run id
    is the month's, not the DAG run's). Returns the agencies whose report this call queued."""
    from sb87.notices.outbox import send_notice_once

    queued = []
    for report in reports:
        if send_notice_once(f"drill report {report.month}", KIND, context_of(report, org, today),
                            once_key=f"drill report {report.agency} {report.month}",
                            to=[(report.name, report.email)], cc=cc, conn_id=conn_id):
            queued.append(report.agency)
    return queued


def drills_not_passed(rows: Sequence[Mapping[str, Any]], run_id: str,
                      policies: Sequence[Mapping[str, Any]]) -> list[str]:
    """The servers of this run (`policies`, as the DAG listed them) whose drill did not pass, or left no
    record (its task died first): "host: state". The report task fails the run with them, since it is
    the run's last task and Airflow judges a run by its last tasks."""
    latest = {r["server_id"]: r for r in sorted(rows, key=lambda r: r["id"]) if r["run_id"] == run_id}
    out = []
    for policy in policies:
        row = latest.get(policy["server_id"])
        if row is None:
            out.append(f"{policy['hostname']}: ไม่มีผลการทดสอบ")
        elif row["state"] != PASSED:
            out.append(f"{policy['hostname']}: {row['state']}")
    return out


def send_monthly_reports(now: datetime | None = None) -> list[str]:
    """What the drill DAG's last task does: this month's (Bangkok) reports to every opted-in unit."""
    from sb87.backup.drill import drill_rows
    from sb87.backup.freshness import active_policies
    from sb87.notices.recipients import it_centre_copy
    from sb87.records import store
    from sb87.settings import organisation, settings

    org = organisation()
    units = org.raw.get("drill_reports") or []
    if not units:
        return []
    today = bangkok_date(now)
    eng = store.project_engine()
    reports = unit_reports(drill_rows(eng), active_policies(eng), units, month_key(today))
    return send_reports(reports, org.raw["organisation"], today, cc=it_centre_copy(),
                        conn_id=settings().smtp_conn_id)
