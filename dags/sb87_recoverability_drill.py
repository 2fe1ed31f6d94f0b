"""
### SB-8-7 ทดสอบกู้คืนข้อมูลประจำเดือน — monthly recoverability drill

Proves, every month, that each protected server's data can be brought back. Runs at 19:00 Bangkok
time (after office hours) on the **first working day of the month** (government offices' calendar,
`sb87.timekeeping.workdays`); an operator may trigger it at any time, for one server (`server`: its
inventory id or host name) or for all.

One mapped task per active policy (`sb87_backup_policies`):

1. a random sample of the newest snapshot's files, at most `SB87_DRILL_MAX_FILES` files and
   `SB87_DRILL_MAX_MIB` MiB, at least one file from each data root;
2. restored **onto the deposited server into a new scratch folder** (never over live data) with
   `restic restore --verify`; each file with an unchanged live copy (same size and mtime) must have the
   same SHA-256, the others are reported as changed since the snapshot; the scratch folder is removed
   even when the drill fails;
3. `restic check --read-data-subset=<month>/12` on the backup host (all data read once a year);
4. recorded in `sb87_drills` with the throughput and the estimated time to restore the whole server.

A mismatch, an unreadable pack or a restore error fails that server's task; a server that cannot be
reached is **not run** (the task fails too). The IT Centre is e-mailed once per incident and once when
the server's next drill passes. When all drills have finished, each unit that asked for it in the
organisation file (`drill_reports`) gets the month's report: its servers backed up and proven
restorable, with dates, or said plainly not to be (not on an operator's run for one server); that last
task also fails the run when a drill of the run did not pass. Details: `docs/drills.md`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task

from sb87.settings import settings  # a small file and the environment: cheap at parse time

with DAG(
    dag_id="sb87_recoverability_drill",
    dag_display_name="SB-8-7 ทดสอบกู้คืนข้อมูลประจำเดือน",
    description="พิสูจน์ทุกเดือนว่าข้อมูลสำรองของเครื่องที่ฝากทุกเครื่องกู้คืนได้จริง",
    doc_md=__doc__,
    # 12:00 UTC = 19:00 in Bangkok, after office hours; days 1-10 so the first working day is always among
    # them (the gate below lets only that day through).
    schedule="0 12 1-10 * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "server": Param(
            "", type="string", maxLength=253, pattern=r"^[A-Za-z0-9._-]*$",
            title="เครื่องที่จะทดสอบ (Server)",
            description="รหัสในทะเบียนหรือชื่อเครื่อง เว้นว่าง = ทุกเครื่องที่มี policy / "
                        "Inventory id or host name; empty = every server with an active policy",
        ),
    },
    tags=["SB-8-7", "drill"],
):

    @task.short_circuit(task_display_name="วันนี้เป็นวันทดสอบกู้คืนหรือไม่")
    def is_drill_day() -> bool:
        """A scheduled run goes on only on the month's first working day; an operator's run always goes."""
        from sb87.backup.drill import is_drill_day as first_working_day
        from sb87.timekeeping.workdays import default_calendar

        context = get_current_context()
        if context["dag_run"].run_type != "scheduled":
            return True
        calendar = default_calendar()
        # The day the run was scheduled for, not the day it happens to start (a scheduler that was down).
        when = context.get("logical_date") or datetime.now(calendar.tz)
        return first_working_day(when.astimezone(calendar.tz).date(), calendar)

    @task(task_display_name="รายชื่อเครื่องที่มี policy")
    def servers_to_drill() -> list[dict]:
        """The active policies, or the one the operator named (an unknown name fails, naming it)."""
        from airflow.sdk.exceptions import AirflowFailException

        from sb87.backup.freshness import active_policies
        from sb87.records import store

        wanted = str(get_current_context()["params"].get("server") or "").lower()
        rows = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
                for row in active_policies(store.project_engine())]
        if wanted:
            rows = [r for r in rows if wanted in (r["server_id"].lower(), r["hostname"].lower())]
            if not rows:
                raise AirflowFailException(f"server: {wanted!r} has no active backup policy")
        return rows

    @task(task_display_name="ทดสอบกู้คืน", map_index_template="{{ drill_server }}",
          execution_timeout=timedelta(hours=12), pool=settings().backup_pool,
          doc_md="One server's drill: sample, restore into a scratch folder on the server, compare, check slice, "
                 "record, alert. Fails unless the drill passed; a server that cannot be reached is `not_run`.")
    def drill(policy: dict) -> dict:
        """One server's drill (sb87.backup.drill.drill_server); fails unless it passed."""
        from sb87.backup.drill import drill_server

        context = get_current_context()
        context["drill_server"] = policy["hostname"]
        return drill_server(policy, context["run_id"]).summary()

    servers = servers_to_drill()
    is_drill_day() >> servers

    @task(task_display_name="ส่งรายงานผลทดสอบกู้คืนประจำเดือนถึงหน่วยงาน", trigger_rule="all_done",
          doc_md="After every server's drill has finished (passed or not): the month's report to each unit that "
                 "asked for one in the organisation file (`drill_reports`), once per unit and month, copied to "
                 "the IT Centre; none when the operator drilled one server only. Then fails, naming them, if any "
                 "drill of this run did not pass: the run's verdict, as the last task.")
    def report_to_units() -> list[str]:
        """The monthly reports (sb87.backup.drill_report); the agencies whose report this run queued."""
        from airflow.sdk.exceptions import AirflowFailException

        from sb87.backup.drill import drill_rows
        from sb87.backup.drill_report import drills_not_passed, send_monthly_reports
        from sb87.records import store

        context = get_current_context()
        servers = context["ti"].xcom_pull(task_ids="servers_to_drill")
        if servers is None:
            raise AirflowFailException("no list of servers to drill (see the task รายชื่อเครื่องที่มี policy)")
        # A drill of one server says nothing about the unit's other servers this month.
        sent = [] if context["params"].get("server") else send_monthly_reports()
        # Airflow judges a run by its last tasks: this one carries the drills' failures.
        bad = drills_not_passed(drill_rows(store.project_engine()), context["run_id"], servers)
        if bad:
            raise AirflowFailException(f"รายงานส่งแล้ว {len(sent)} หน่วยงาน; ทดสอบกู้คืนไม่ผ่าน: " + "; ".join(bad))
        return sent

    drill.expand(policy=servers) >> report_to_units()
