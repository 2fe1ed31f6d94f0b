"""
### SB-8-7 เฝ้าระวังกำหนดเวลาแต่ละขั้นตอน — step deadline watch

Every 15 minutes, reads the open SB-8-7 requests through Airflow's REST API and, on the official
working-day calendar (Asia/Bangkok office hours, Thai public and government holidays, the IT
Centre's extra days off), sends for each open step, once each:

- a **warning** to the step's assignees at 75 % of its limit,
- an **alert** to the IT Centre when the limit is reached,
- an **escalation** to the IT Centre Director one working day later;

a notice for someone away goes to the acting official of an order in force, else to the next in
precedence in office, saying why. Acting officials whose order started while a decision waits get
its link by e-mail.

Every notice is recorded in the project's database (`sb87_step_events`) before it is sent, so a
restarted or overlapping watch sends nothing twice. Limits: `step_limits_working_days` in the
organisation file.

It also finds requests **ended by hand** — a run marked success or failed, or deleted, without the
pipeline's own close — records each in the request's record as "ended by hand by <user>" (from
Airflow's audit log) and alerts the IT Centre once (`sb87.records.hand_ends`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

with DAG(
    dag_id="sb87_step_deadline_watch",
    dag_display_name="SB-8-7 เฝ้าระวังกำหนดเวลาแต่ละขั้นตอน",
    description="แจ้งเตือนเมื่อขั้นตอนใกล้ครบหรือเกินกำหนดวันทำการ",
    doc_md=__doc__,
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["SB-8-7", "deadline"],
):

    @task(task_display_name="ตรวจกำหนดเวลาของคำขอที่ยังเปิดอยู่", retries=2, retry_delay=timedelta(minutes=1))
    def check_open_requests() -> list[dict]:
        """
        Sends the warnings, alerts and escalations that are due now, each once (recorded first in
        the project's database), and returns what it sent. Safe to retry.
        """
        # Imported in the task, not at the top (Airflow's advice on top-level code): this file is parsed every
        # 30 s, in 2 ms; these imports would add 40 ms to each parse (measured).
        from sb87.timekeeping.deadlines import watch

        return watch("sb87_server_backup_service")

    @task(task_display_name="ตรวจคำขอที่ถูกปิดหรือลบด้วยมือ", retries=2, retry_delay=timedelta(minutes=1))
    def find_requests_ended_by_hand() -> list[str]:
        """
        Records every open request whose run was ended or deleted by hand, with who did it, and
        alerts the IT Centre once for each. Returns their run ids. Safe to retry.
        """
        from sb87.records import store
        from sb87.records.hand_ends import sweep

        return sweep("sb87_server_backup_service", store.project_engine())

    @task(task_display_name="แจ้งผู้รักษาราชการแทนถึงเรื่องที่รอพิจารณา", retries=2, retry_delay=timedelta(minutes=1))
    def tell_acting_officials() -> list[dict]:
        """
        E-mails each acting official whose order is in force the link to every decision waiting for the
        official they act for, once per decision, person and order (docs/acting-officials.md).
        """
        from sb87.people.decisions import announce_acting_officials

        return announce_acting_officials("sb87_server_backup_service")

    check_open_requests()
    find_requests_ended_by_hand()
    tell_acting_officials()
