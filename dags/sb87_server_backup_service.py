"""
### SB-8-7 การฝากเครื่อง Server — server backup & restore service

One run per request memo from a unit of the Department of Highways (กรมทางหลวง), following the
IT Centre's procedure SB-8-7. Each step of the seed is one task group, built by its own module in
`sb87.steps` (the table of steps, Thai titles, limits and who acts is `sb87.steps` itself):

1. **รับหนังสือ** — the request (the trigger form) is checked field by field; it gets its receipt
   number; the requester is told, through the outbox (an SMTP outage delays the e-mail, not the request).
2. **ผู้อำนวยการศูนย์ฯ สั่งการ** — the IT Centre Director approves or rejects (with a reason) and picks
   the sub-units that take the work. A rejection skips steps 3–6 at once and sends the rejection memo.
3. **ประสานงานและจัดทำเอกสาร** — staff of the chosen sub-units record the server-details document; the
   group/division director endorses it or sends it back (up to three rounds); it becomes a PDF.
4. **สั่งการ** — the group/division director orders staff from the roster to carry the work out.
5. **สร้างและทดสอบ Backup Policy** — once the equipment is ready, over SSH: the policy on the backup
   host and on the unit's server, a first backup with `restic check`, a test restore.
6. **จัดทำ Restore File** — the newest snapshot at or before `as_of`, restored onto the unit's server
   into a new folder, or packed as a Restore File archive, with a SHA-256 manifest, verified.
7. **แจ้งผล** — the result (or rejection) memo as a PDF, attached to a Thai e-mail to the requesting unit.

A teardown closes every run: per-step working days in the run note and the project's database, and
an alert to the IT Centre when a step failed (the run then fails too).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, chain

from sb87 import steps
from sb87.intake_rules.params import request_params
from sb87.settings import settings
from sb87.steps.closing import close_request
from sb87.steps.step1_receive_memo import receive_memo
from sb87.steps.step2_director_orders import director_orders
from sb87.steps.step3_coordinate import coordinate
from sb87.steps.step4_order_staff import order_staff
from sb87.steps.step5_backup_policy import backup_policy
from sb87.steps.step6_restore_file import restore_file
from sb87.steps.step7_result_memo import result_memo
from sb87.timekeeping.deadlines import backstop_days, due_from_now, limits_from_config

with DAG(
    dag_id=steps.DAG_ID,
    dag_display_name="SB-8-7 การฝากเครื่อง Server (สำรองและกู้คืนข้อมูล)",
    description="คำขอใช้บริการฝากเครื่อง Server หนึ่งฉบับต่อหนึ่ง run",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=settings().max_open_requests,
    # Backstop only: the watch DAG checks each step on the working-day calendar.
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                           interval=timedelta(days=backstop_days(limits_from_config())),
                           callback=SyncCallback("sb87.timekeeping.deadlines.request_overdue")),
    params=request_params(),
    tags=["SB-8-7", "backup", "ศูนย์เทคโนโลยีสารสนเทศ"],
    user_defined_macros={"due_from_now": due_from_now},
):
    step1, request, receipt = receive_memo()
    step2, decision = director_orders(request)

    chain(
        step1,                                  # 1 รับหนังสือ
        step2,                                  # 2 ผู้อำนวยการศูนย์ฯ สั่งการ (rejected: straight to 7)
        coordinate(request, receipt),           # 3 ประสานงาน, เอกสารระบุรายละเอียด
        order_staff(request),                   # 4 สั่งการให้เจ้าหน้าที่ดำเนินการ
        [backup_policy(request), restore_file(request)],  # 5 Backup Policy, 6 Restore File
        result_memo(decision, request),         # 7 แจ้งผล (or the rejection memo)
        close_request().as_teardown(),
    )
