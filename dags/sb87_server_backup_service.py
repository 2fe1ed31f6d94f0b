"""
### SB-8-7 การฝากเครื่อง Server — server backup & restore service

One run per request memo from a unit of the Department of Highways (กรมทางหลวง), following the
IT Centre's procedure SB-8-7 (the steps, their Thai titles and limits: `sb87.steps`):

1. **รับหนังสือ** — the request (the trigger form) is checked field by field; it gets its receipt
   number; the requester is told, through the outbox (an SMTP outage delays the e-mail, not the request).
2. **ผู้อำนวยการศูนย์ฯ พิจารณา** — the IT Centre Director approves or rejects (with a reason) and picks
   the sub-units that take the work. The answer is read back from Airflow's human-in-the-loop record.
3. **ประสานงานและจัดทำเอกสาร** — staff of the chosen sub-units record the server-details document; the
   group/division director endorses it or sends it back (up to three rounds); it becomes a PDF.
4. **สั่งการ** — the group/division director orders staff from the roster to carry the work out.
5. **สร้างและทดสอบ Backup Policy** — once the equipment is ready, over SSH: the policy, a first backup
   with `restic check`, a test restore compared by SHA-256.
6. **จัดทำ Restore File** — the newest snapshot at or before `as_of`, packaged with a SHA-256 manifest,
   delivered under the request's number and verified.
7. **แจ้งผล** — the result (or rejection) memo as a PDF, attached to a Thai e-mail to the requesting unit.

A teardown closes every run: per-step working days in the run note and the project's database, and
an alert to the IT Centre when a step failed (the run then fails too).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback, TaskGroup, chain, task
from airflow.sdk.exceptions import AirflowFailException

from sb87 import coordination, decisions, forms, intake, outcome, steps
from sb87.backup_operator import BackupScriptOperator, readiness, record_policy, restore_source, snapshot_as_of
from sb87.deadlines import backstop_days, due_from_now, limits_from_config
from sb87.decisions import Decision, hitl_body, subject
from sb87.params import request_params
from sb87.settings import settings

cfg = settings()
NOT_RETRIED = {"retries": 0}  # a refused request stays refused; a failed summary of work is not redone

with DAG(
    dag_id=steps.DAG_ID,
    dag_display_name="SB-8-7 การฝากเครื่อง Server (สำรองและกู้คืนข้อมูล)",
    description="คำขอใช้บริการฝากเครื่อง Server หนึ่งฉบับต่อหนึ่ง run",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=cfg.max_open_requests,
    # Backstop only: the watch DAG checks each step on the working-day calendar.
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                           interval=timedelta(days=backstop_days(limits_from_config())),
                           callback=SyncCallback("sb87.deadlines.request_overdue")),
    params=request_params(),
    tags=["SB-8-7", "backup", "ศูนย์เทคโนโลยีสารสนเทศ"],
    user_defined_macros={"due_from_now": due_from_now},
):
    # ---- step 1: receive the memo
    @task(task_display_name="ขั้นตอนที่ 1 รับหนังสือและตรวจสอบคำขอ", **NOT_RETRIED)
    def validate_request(params=None, dag_run=None) -> dict:
        """Every field checked (host names, addresses, paths, one-line texts, the inventory); a bad
        field fails here, naming each field, before anything reaches SSH or SMTP."""
        return intake.validate(params or {}, dag_run)

    @task(task_display_name="ขั้นตอนที่ 1 ลงทะเบียนรับ (เลขรับ)", retries=2)
    def register_receipt(request: dict, run_id=None) -> str:
        """The receipt number (เลขรับ) in the document register; a retry keeps the same number."""
        return intake.register_receipt(request, run_id)

    @task(task_display_name="ขั้นตอนที่ 1 แจ้งรับเรื่อง", retries=2)
    def acknowledge(request: dict, receipt: str, run_id=None) -> bool:
        """Queues the acknowledgement (receipt number, expected completion date) in the outbox, once."""
        return intake.acknowledge(request, receipt, run_id)

    # Not in the backup host's pool: a half-second listing must not queue behind step 6's long jobs
    # before the director is even asked (tests/test_dag_integrity.py, BENCHMARKS.md *100 at once*).
    @task(task_display_name="ขั้นตอนที่ 1 ตรวจชุดข้อมูลที่ขอกู้คืน", retries=2)
    def check_restore_source(request: dict, run_id=None) -> str | None:
        """A restore request: a snapshot at or before `as_of` exists on the backup host, before anyone is asked."""
        return restore_source(request, run_id)

    # ---- step 2: the IT Centre Director decides
    director_decision = Decision(
        task_id=steps.DIRECTOR_DECISION, task_display_name=steps.DIRECTOR.title, role=steps.IT_DIRECTOR,
        doc_md="The IT Centre Director approves or rejects the request and assigns the sub-units.",
        subject=subject("พิจารณาคำขอฝากเครื่อง Server ของ", steps.DIRECTOR.limit_key),
        body=hitl_body("director_decision"), options=[steps.APPROVE, steps.REJECT], params=forms.director_params(),
    )

    @task(task_display_name="บันทึกผลการพิจารณา", retries=2)
    def record_decision(request: dict, **context) -> dict:
        """The director's answer as Airflow's human-in-the-loop record holds it, checked, for the audit."""
        return decisions.director_record(request, context)

    @task.branch(task_display_name="ส่งต่อตามผลการพิจารณา")
    def route_decision(decision: dict) -> list[str]:
        """Approved → coordination (step 3); rejected → the rejection memo."""
        return [steps.details_task(1)] if decision["approved"] else [steps.NOTIFY_REJECTION]

    # ---- step 3: coordinate and record the server-details document
    @task(task_display_name="ส่งกลับครบจำนวนรอบ ยุติคำขอ", **NOT_RETRIED)
    def rounds_exhausted() -> None:
        """The document was sent back in every round: the request stops here and must be filed again."""
        raise AirflowFailException(f"the server-details document was sent back {steps.MAX_ROUNDS} times; "
                                   "the request ends here (file a new request once the details are agreed)")

    @task(task_display_name="จัดทำเอกสารระบุรายละเอียด (PDF)", retries=2)
    def server_details_document(request: dict, receipt: str, **context) -> dict:
        """The endorsed document (read from Airflow's records of every round) as a PDF in the request's folder."""
        return coordination.server_details_document(request, receipt, context)

    # ---- step 4: order staff to carry it out
    assign_staff = Decision(
        task_id=steps.ASSIGN, task_display_name=steps.ASSIGNMENT.title, role=steps.GROUP_DIRECTOR,
        doc_md="The group/division director orders staff from the roster; they get the later steps' warnings.",
        prefill=coordination.ordered_staff_default, extras=coordination.assignment_extras,
        subject=subject("สั่งการให้เจ้าหน้าที่ดำเนินการตามคำขอของ"), body=hitl_body("assign_staff"),
        options=[steps.ORDER], params=forms.assign_params(),
    )

    @task.branch(task_display_name="ส่งต่อตามบริการที่ขอ")
    def route_services(request: dict, **context) -> list[str]:
        """Records who was ordered (from Airflow's record of step 4), then runs steps 5 and/or 6."""
        return coordination.record_assignment(request, context)

    # ---- steps 5 and 6: over SSH, on the backup host and on each deposited server
    @task.sensor(task_id="readiness", task_display_name="ตรวจความพร้อมของอุปกรณ์และเครื่องมือ", mode="reschedule",
                 pool=cfg.backup_pool, poke_interval=cfg.readiness_poke_seconds,
                 timeout=cfg.readiness_timeout_hours * 3600)
    def ready(request: dict, **context):
        """Waits (no worker slot held) until the backup tool, free space and the servers are ready."""
        return readiness(request, context)

    @task(task_display_name="บันทึก Policy เข้าการเฝ้าระวังความสดของข้อมูลสำรอง", retries=2)
    def policy_active(request: dict, run_id=None) -> list[str]:
        """The servers' policies are active: the daily freshness watch checks them from now on."""
        return record_policy(request, run_id)

    @task(task_display_name="เลือกชุดข้อมูล ณ เวลาที่ขอ", **NOT_RETRIED)
    def choose_snapshot(request: dict, listing: str) -> str:
        """The newest snapshot taken at or before the request's `as_of`; none → the step fails, saying so."""
        return snapshot_as_of(request, listing)

    # ---- step 7: tell the requesting unit; close the run
    @task(task_id=steps.NOTIFY_RESULT, task_display_name=steps.RESULT.title, retries=2)
    def notify_result(decision: dict, request: dict, **context) -> bool:
        """The Thai result e-mail with the result memo (PDF) to the requester, queued once."""
        return outcome.notify_result(decision, request, context)

    @task(task_id=steps.NOTIFY_REJECTION, task_display_name="แจ้งผลการพิจารณา (ไม่อนุมัติ)", retries=2)
    def notify_rejection(decision: dict, request: dict, dag_run=None) -> bool:
        """The rejection and its reason as a memo to the requester, queued once; the run ends successfully."""
        return outcome.notify_rejection(decision, request, dag_run)

    @task(task_id=steps.CLOSE_TASK, task_display_name="ปิดคำขอ: สรุปเวลาแต่ละขั้นตอน", retries=2)
    def close_request(dag_run=None) -> list[dict]:
        """Per step: due, working days used, met / missed / failed; alerts the IT Centre if a step failed."""
        return outcome.close_request(dag_run)

    # ---- wiring: the seven steps in order
    request = validate_request()
    receipt = register_receipt(request)                                   # step 1
    decision = record_decision(request)                                   # step 2
    chain(acknowledge(request, receipt), check_restore_source(request), director_decision, decision)
    route = route_decision(decision)
    with TaskGroup(group_id=steps.COORDINATION.group, group_display_name=steps.COORDINATION.title):  # step 3
        rounds = [coordination.round_tasks(n) for n in range(1, steps.MAX_ROUNDS + 1)]
        exhausted = rounds_exhausted()
        for (details, review, accepted), after in zip(rounds, [r[0] for r in rounds[1:]] + [exhausted], strict=True):
            chain(details, review, [accepted, after])
        details_endorsed = EmptyOperator(task_id="details_endorsed", task_display_name="เอกสารได้รับความเห็นชอบ",
                                         trigger_rule="none_failed_min_one_success",
                                         doc_md="Joins the rounds: succeeds once any round's document is endorsed.")
        document = server_details_document(request, receipt)
        chain(route, rounds[0][0])
        [r[2] for r in rounds] >> details_endorsed >> document
    work = route_services(request)                                        # step 4
    chain(document, assign_staff, work)
    with TaskGroup(group_id=steps.BACKUP_POLICY.group, group_display_name=steps.BACKUP_POLICY.title) as step5:
        created = BackupScriptOperator(action="create_policy", request=request)
        installed = BackupScriptOperator(action="client_policy", request=request, learnt=created.output)
        chain(ready(request), created, installed,
              BackupScriptOperator(action="authorize_push", request=request, learnt=installed.output),
              *(BackupScriptOperator(action=a, request=request) for a in ("test_backup", "check_repository",
                                                                          "test_restore")),
              policy_active(request))
    with TaskGroup(group_id=steps.RESTORE_FILE.group, group_display_name=steps.RESTORE_FILE.title) as step6:
        listing = BackupScriptOperator(action="list_snapshots", request=request)
        package = BackupScriptOperator(action="package", request=request,
                                       snapshot=choose_snapshot(request, listing.output))
        BackupScriptOperator(action="verify", request=request, learnt=package.output)
    work_finished = EmptyOperator(task_id=steps.WORK_FINISHED, task_display_name="งานขั้นตอนที่ 5–6 เสร็จแล้ว",
                                  trigger_rule="none_failed_min_one_success",
                                  doc_md="Joins steps 5 and 6: succeeds once the chosen ones finished without failure.")
    result, rejection = notify_result(decision, request), notify_rejection(decision, request)
    chain(work, [step5, step6], work_finished, result)                      # steps 5, 6, 7
    route >> rejection
    [result, rejection, exhausted] >> close_request().as_teardown()
