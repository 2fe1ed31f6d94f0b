"""
### SB-8-7 รายงานผลการให้บริการประจำเดือน (the monthly report)

Every day at 09:00 Bangkok time this DAG asks whether today is the **first official working day of the
month** (`sb87.timekeeping.workdays`: weekends, government days off and the organisation file's extra
days); only on that day does it send last month's report: the group's memo (PDF) to the IT Centre
Director with the month's numbers as CSV and XLSX, the General Administration Division in copy.
Numbers: requests received, completed, rejected, failed; per step the share finished within its
working-day limit and the median working days; servers protected and the share of days with a fresh
backup (`sb87.board.report`, docs/board.md).

A manual run with the param `month` (`YYYY-MM`) sends that month's report at once. Safe to re-run: the
memo keeps its register number and each month's e-mail is sent once.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="sb87_monthly_report",
    dag_display_name="SB-8-7 รายงานผลการให้บริการประจำเดือน",
    description="ส่งรายงานประจำเดือนถึงผู้อำนวยการศูนย์ฯ ในวันทำการแรกของเดือน",
    doc_md=__doc__,
    # 09:00 in Bangkok every day; the first task lets only the month's first working day through.
    schedule="0 9 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Bangkok"),
    catchup=False,
    max_active_runs=1,
    params={"month": Param("", type="string", pattern=r"^$|^\d{4}-(0[1-9]|1[0-2])$",
                           title="เดือน (YYYY-MM, ค.ศ.)",
                           description="เว้นว่าง = เดือนที่แล้ว ส่งเฉพาะวันทำการแรกของเดือน; "
                                       "ระบุเดือน = ส่งรายงานของเดือนนั้นทันที")},
    tags=["SB-8-7", "report"],
):

    @task.short_circuit(task_display_name="วันนี้เป็นวันทำการแรกของเดือนหรือมีการระบุเดือน")
    def due_today(params: dict | None = None) -> str | None:
        """The month to report: the one given, or last month on the month's first working day (else skip)."""
        from sb87.board.report import first_working_day, previous_month
        from sb87.timekeeping.thai_dates import bangkok_date
        from sb87.timekeeping.workdays import default_calendar

        if (params or {}).get("month"):
            return params["month"]
        today = bangkok_date()
        if today != first_working_day(today.year, today.month, default_calendar()):
            return None
        return previous_month(pendulum.now("UTC"))

    @task(task_display_name="จัดทำและส่งรายงานประจำเดือน", retries=2, retry_delay=timedelta(minutes=5))
    def send_report(month: str) -> dict:
        """The memo, CSV and XLSX, sent once per month through the outbox."""
        from sb87.board.report import send_monthly_report

        return send_monthly_report(month, pendulum.now("UTC"))

    send_report(due_today())
