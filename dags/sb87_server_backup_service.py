"""
### SB-8-7 การฝากเครื่อง Server — server backup & restore service

One run per request memo from a unit of the Department of Highways (กรมทางหลวง), following the
IT Centre's procedure SB-8-7:

1. **รับหนังสือ** — the request (the trigger form) is checked field by field; a bad field fails here.
2. **ผู้อำนวยการศูนย์ฯ พิจารณา** — the IT Centre Director approves or rejects (with a reason) and
   picks the sub-units that take the work. Rejection e-mails the requester and ends the run.
3. **ประสานงานและจัดทำเอกสาร** — staff of the chosen sub-units record the server-details document;
   the group/division director endorses it or sends it back (up to three rounds); it becomes a PDF.
4. **สั่งการ** — the group/division director orders staff from the roster to carry the work out.
5. **สร้างและทดสอบ Backup Policy** — once the backup host is ready (tool, free space, servers
   reachable), over SSH: the restic repository and policy with its cron schedule, a first backup
   with `restic check`, and a test restore compared by SHA-256.
6. **จัดทำ Restore File** — the requested paths from the newest snapshot at or before `as_of`,
   packaged with a SHA-256 manifest, delivered under the request's number and verified.
7. **แจ้งผล** — the result e-mail (Thai, Buddhist-Era dates) to the requesting unit.

Trigger from the form, `airflow dags trigger`, or `POST /api/v2/dags/sb87_server_backup_service/dagRuns`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.ssh.operators.ssh import SSHOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import (
    DAG,
    DeadlineAlert,
    DeadlineReference,
    Param,
    PokeReturnValue,
    SyncCallback,
    TaskGroup,
    chain,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from sb87 import coordination, pipeline
from sb87.airflow_api import append_run_note, set_run_note
from sb87.backends import parse_results, render_script
from sb87.deadlines import backstop_days, due_from_now, limits_from_config
from sb87.decisions import DecisionNotifier, RosterBranchDecision, RosterDecision, with_role
from sb87.params import request_params
from sb87.settings import organisation, registered_servers, settings

cfg = settings()
org = organisation()

with DAG(
    dag_id="sb87_server_backup_service",
    dag_display_name="SB-8-7 การฝากเครื่อง Server (สำรองและกู้คืนข้อมูล)",
    description="คำขอใช้บริการฝากเครื่อง Server หนึ่งฉบับต่อหนึ่ง run",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=cfg.max_open_requests,
    # Backstop only: the watch DAG checks each step on the working-day calendar.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(days=backstop_days(limits_from_config())),
        callback=SyncCallback("sb87.deadlines.request_overdue"),
    ),
    params=request_params(),
    tags=["SB-8-7", "backup", "ศูนย์เทคโนโลยีสารสนเทศ"],
    user_defined_macros={
        "backup_script": render_script,
        "backup_results": parse_results,
        "due_from_now": due_from_now,
    },
    render_template_as_native_obj=False,
):

    @task(task_id="validate_request", task_display_name="ขั้นตอนที่ 1 รับหนังสือและตรวจสอบคำขอ", retries=0)
    def validate_request(params: dict | None = None, dag_run=None) -> dict:
        """
        Checks every field of the request beyond what the trigger form's schema can say (RFC 1123
        host names, addresses, one-line texts, absolute normalised paths) and returns the
        normalised request that every later step uses. A refused request fails here, naming each
        bad field; nothing reaches SSH or SMTP.
        """
        from sb87.request import RequestInvalid, request_summary
        from sb87.request import validate_request as check

        try:
            request = check(dict(params or {}), inventory=registered_servers())
        except RequestInvalid as err:
            set_run_note(dag_run.dag_id, dag_run.run_id, f"คำขอไม่ถูกต้อง ไม่ดำเนินการต่อ\n{err.errors}")
            raise AirflowFailException(str(err)) from err
        waiting = f"รอผู้อำนวยการศูนย์ฯ พิจารณา ({due_from_now('director_decision')})"
        set_run_note(dag_run.dag_id, dag_run.run_id, f"{request_summary(request)}\n{waiting}")
        return request

    request = validate_request()

    @task(task_display_name="ขั้นตอนที่ 1 ลงทะเบียนรับและแจ้งรับเรื่อง", retries=2)
    def acknowledge(request: dict, dag_run=None) -> str:
        """
        Gives the request its receipt number (เลขรับ) in the document register and e-mails the
        requester the number and the expected completion date on the working-day calendar. Safe to
        retry: the run keeps its number and the e-mail is sent once.
        """
        from datetime import UTC, datetime

        from sb87 import store
        from sb87.notices import send_notice_once
        from sb87.workdays import default_calendar

        now = datetime.now(UTC)
        entry = store.register_document(store.project_engine(), dag_run.run_id, "in", request["subject"], now)
        receipt = f"{entry['number']}/{entry['year_be']}"
        total = sum(limits_from_config().values())
        send_notice_once(
            dag_run.run_id,
            "acknowledgement",
            {"request": request, "org": org.raw["organisation"], "receipt": receipt, "received": now,
             "expected": default_calendar().add_working_days(now, total), "total_days": round(total)},
            to=pipeline.requester(request),
            cc=pipeline.it_centre_copy(),
            conn_id=cfg.smtp_conn_id,
        )
        return receipt

    receipt = acknowledge(request)

    director_decision = HITLOperator(
        task_id="director_decision",
        task_display_name="ขั้นตอนที่ 2 ผู้อำนวยการศูนย์ฯ พิจารณาสั่งการ",
        doc_md="The IT Centre Director approves or rejects the request and assigns the sub-units.",
        subject="[SB-8-7] พิจารณาคำขอฝากเครื่อง Server ของ{{ ti.xcom_pull(task_ids='validate_request').agency }}"
        " ({{ due_from_now('director_decision') }})",
        body=pipeline.hitl_body("director_decision"),
        options=[pipeline.APPROVE, pipeline.REJECT],
        params={
            "reason": Param(
                "",
                type="string",
                maxLength=1000,
                title="เหตุผล / ความเห็น",
                description="จำเป็นเมื่อไม่อนุมัติ: ข้อความนี้ส่งถึงหน่วยงานผู้ร้องขอ",
            ),
            "sub_units": Param(
                [],
                type="array",
                items={"type": "string", "enum": org.sub_unit_codes},
                uniqueItems=True,
                title="หน่วยงานที่รับผิดชอบ",
                description="เว้นว่างไว้ = ตามประเภทบริการที่ขอ",
                examples=org.sub_unit_codes,
                values_display={code: org.sub_unit_name(code) for code in org.sub_unit_codes},
            ),
        },
        assigned_users=with_role("it_director"),
        notifiers=[DecisionNotifier()],
        response_timeout=timedelta(hours=cfg.decision_timeout_hours) if cfg.decision_timeout_hours else None,
        retries=0,
    )
    request >> director_decision

    @task.branch(task_display_name="ส่งต่อตามผลการพิจารณา")
    def route_decision(hitl_output: dict, request: dict, dag_run=None) -> list[str]:
        """Approved → steps 5 and/or 6 by the services asked for, then the result; rejected → notice."""
        decision = pipeline.decision_record(hitl_output, request["services"])
        set_run_note(dag_run.dag_id, dag_run.run_id, pipeline.decision_note(decision, request))
        return pipeline.next_steps(decision)

    route = route_decision(director_decision.output, request)

    with TaskGroup(
        group_id=coordination.GROUP,
        group_display_name="ขั้นตอนที่ 3 ประสานงานและจัดทำเอกสารระบุรายละเอียด",
        tooltip="staff record the server-details document; the group/division director endorses it or sends it back",
    ):
        previous = route
        endorsed = []
        for n in range(1, coordination.MAX_ROUNDS + 1):
            details = RosterDecision(
                task_id=f"server_details_{n}",
                task_display_name=f"บันทึกเอกสารระบุรายละเอียด (รอบที่ {n})",
                doc_md="The staff of the sub-units the director picked record the server-details document. "
                "Pre-filled from the request (round 1) or from the version sent back.",
                subject="[SB-8-7] บันทึกเอกสารระบุรายละเอียดการรับฝากเครื่อง Server ของ"
                "{{ ti.xcom_pull(task_ids='validate_request').agency }} ({{ due_from_now('coordination') }})",
                body=pipeline.hitl_body("server_details"),
                options=[coordination.SUBMIT],
                params=coordination.details_params(),
                assignees=coordination.coordinating_staff,
                prefill=coordination.details_prefill(n),
                retries=0,
            )
            last = n == coordination.MAX_ROUNDS
            review = RosterBranchDecision(
                task_id=f"review_details_{n}",
                task_display_name=f"ผู้อำนวยการกลุ่มฯ ตรวจเอกสาร (รอบที่ {n})",
                doc_md="The group/division director endorses the document or sends it back with a reason.",
                subject="[SB-8-7] ตรวจเอกสารระบุรายละเอียดการรับฝากเครื่อง Server ของ"
                "{{ ti.xcom_pull(task_ids='validate_request').agency }} ({{ due_from_now('coordination') }})",
                body=pipeline.hitl_body("review_details"),
                options=[coordination.ENDORSE, coordination.SEND_BACK],
                options_mapping={
                    coordination.ENDORSE: coordination.endorsed_task(n),
                    coordination.SEND_BACK: (
                        coordination.ROUNDS_EXHAUSTED_TASK if last else coordination.details_task(n + 1)
                    ),
                },
                params=coordination.review_params(),
                assigned_users=with_role("group_director"),
                retries=0,
            )
            accepted = EmptyOperator(
                task_id=f"endorsed_{n}",
                task_display_name=f"เห็นชอบเอกสาร (รอบที่ {n})",
                doc_md="Reached when this round's document is endorsed; the PDF step joins the rounds here.",
            )
            chain(previous, details, review, accepted)
            endorsed.append(accepted)
            previous = review

        @task(task_display_name="ส่งกลับครบจำนวนรอบ ยุติคำขอ", retries=0)
        def rounds_exhausted() -> None:
            """The document was sent back in every round: the request stops here and must be filed again."""
            raise AirflowFailException(
                f"the server-details document was sent back {coordination.MAX_ROUNDS} times; "
                "the request ends here (file a new request once the details are agreed)"
            )

        previous >> rounds_exhausted()

        # The PDF step also depends on validate_request and acknowledge through its arguments, so
        # the rounds are joined first: a rule like "one success" on the PDF step itself would be
        # met by those and render a document nobody endorsed.
        details_endorsed = EmptyOperator(
            task_id="details_endorsed",
            task_display_name="เอกสารได้รับความเห็นชอบ",
            doc_md="Succeeds once any round's document is endorsed; skipped when none is.",
            trigger_rule="none_failed_min_one_success",
        )

        @task(task_display_name="จัดทำเอกสารระบุรายละเอียด (PDF)", retries=2)
        def server_details_document(request: dict, receipt: str, ti=None, dag_run=None) -> dict:
            """Renders the endorsed document as a PDF in the request's folder and names it in the run note."""
            from datetime import UTC, datetime

            from sb87.documents import server_details_pdf

            endorsed_doc = coordination.endorsed_details(ti)
            path = server_details_pdf(dag_run.run_id, request, receipt, endorsed_doc, datetime.now(UTC))
            append_run_note(dag_run.dag_id, dag_run.run_id,
                            f"ขั้นตอนที่ 3 เอกสารระบุรายละเอียด เห็นชอบโดย {endorsed_doc['endorsed_by']}: {path}")
            return {"path": str(path), "round": endorsed_doc["round"], "endorsed_by": endorsed_doc["endorsed_by"],
                    "recorded_by_id": endorsed_doc["recorded_by_id"]}

        document = server_details_document(request, receipt)
        endorsed >> details_endorsed >> document

    assign_staff = RosterDecision(
        task_id=coordination.ASSIGN_TASK,
        task_display_name="ขั้นตอนที่ 4 สั่งการให้เจ้าหน้าที่ดำเนินการ",
        doc_md="The group/division director orders staff from the roster to carry the work out; they "
        "receive the deadline warnings of the later steps.",
        subject="[SB-8-7] สั่งการให้เจ้าหน้าที่ดำเนินการตามคำขอของ"
        "{{ ti.xcom_pull(task_ids='validate_request').agency }}",
        body=pipeline.hitl_body("assign_staff"),
        options=[coordination.ORDER],
        params=coordination.assign_params(),
        assigned_users=with_role("group_director"),
        prefill=coordination.ordered_staff_default,
        retries=0,
    )
    document >> assign_staff

    @task.branch(task_display_name="ส่งต่อตามบริการที่ขอ")
    def route_services(order: dict, request: dict, dag_run=None) -> list[str]:
        """Records who was ordered to do the work, then runs steps 5 and/or 6 by the services asked for."""
        from sb87 import store

        staff = order["params_input"]["staff"]
        store.save_assignment(store.project_engine(), dag_run.run_id, staff, org.who_answered(order)[0])
        append_run_note(dag_run.dag_id, dag_run.run_id, pipeline.assignment_line(staff))
        return pipeline.work_steps(request)

    route_work = route_services(assign_staff.output, request)

    ssh_defaults = {
        "ssh_conn_id": cfg.backup_conn_id,
        "pool": cfg.backup_pool,
        "cmd_timeout": cfg.ssh_cmd_timeout,
        "retries": 2,
        "retry_delay": timedelta(seconds=cfg.ssh_retry_delay_seconds),
    }

    with TaskGroup(
        group_id=pipeline.BACKUP_GROUP,
        group_display_name="ขั้นตอนที่ 5 สร้างและทดสอบ Backup Policy",
        tooltip="restic over SSH on the backup host",
    ) as backup_test:

        @task.sensor(
            task_display_name="ตรวจความพร้อมของอุปกรณ์และเครื่องมือ",
            poke_interval=cfg.readiness_poke_seconds,
            timeout=cfg.readiness_timeout_hours * 3600,
            mode="reschedule",
            pool=cfg.backup_pool,
        )
        def readiness(request: dict, run_id: str | None = None, dag_run=None) -> PokeReturnValue:
            """
            "If the equipment and tools are ready": the backup tool and its version on the backup host,
            free space for the declared size times the margin, and every server reachable. While not
            ready it waits in reschedule mode (no worker slot held) and logs why.
            """
            from airflow.providers.ssh.hooks.ssh import SSHHook

            hook = SSHHook(ssh_conn_id=cfg.backup_conn_id, cmd_timeout=300)
            with hook.get_conn() as client:
                status, stdout, stderr = hook.exec_ssh_client_command(
                    client, render_script("readiness", request, run_id), get_pty=False, environment=None
                )
            if status != 0:
                print(f"readiness check failed on the backup host (exit {status}): {stderr.decode()[-500:]}")
                return PokeReturnValue(is_done=False)
            report = pipeline.readiness_report(stdout)
            for reason in report["reasons"]:
                print(f"ยังไม่พร้อม (not ready): {reason}")
            if not report["ready"]:
                reasons = "\n".join(f"- {r}" for r in report["reasons"])
                append_run_note(dag_run.dag_id, run_id, f"{pipeline.WAITING_FOR_EQUIPMENT}:\n{reasons}",
                                replace=pipeline.WAITING_FOR_EQUIPMENT)
            return PokeReturnValue(is_done=report["ready"], xcom_value=report)

        create_policy = SSHOperator(
            task_id="create_policy",
            task_display_name="สร้าง Backup Policy",
            doc_md="Creates each server's restic repository once, then (re)writes its include list, "
            "retention and schedule. Safe to retry: a second run changes nothing but the policy files.",
            command="{{ backup_script('create_policy', ti.xcom_pull(task_ids='validate_request'), run_id) }}",
            **ssh_defaults,
        )
        test_backup = SSHOperator(
            task_id="test_backup",
            task_display_name="ทดสอบสำรองข้อมูล",
            doc_md="A first backup of the policy's paths tagged with this request, then `restic check`.",
            command="{{ backup_script('test_backup', ti.xcom_pull(task_ids='validate_request'), run_id) }}",
            **ssh_defaults,
        )
        test_restore = SSHOperator(
            task_id="test_restore",
            task_display_name="ทดสอบการสร้าง Restore File",
            doc_md="Restores one file of this request's snapshot to a scratch folder and compares SHA-256.",
            command="{{ backup_script('test_restore', ti.xcom_pull(task_ids='validate_request'), run_id) }}",
            **ssh_defaults,
        )
        chain(readiness(request), create_policy, test_backup, test_restore)

    with TaskGroup(
        group_id=pipeline.RESTORE_GROUP,
        group_display_name="ขั้นตอนที่ 6 จัดทำ Restore File ให้ตามต้องการ",
        tooltip="point-in-time restore, packaged with a SHA-256 manifest, delivered and verified",
    ) as restore_file:
        list_snapshots = SSHOperator(
            task_id="list_snapshots",
            task_display_name="ค้นหาชุดข้อมูลสำรอง (snapshot)",
            doc_md="Lists the snapshots of the server named in the restore request.",
            command="{{ backup_script('list_snapshots', ti.xcom_pull(task_ids='validate_request'), run_id) }}",
            **ssh_defaults,
        )

        @task(task_display_name="เลือกชุดข้อมูล ณ เวลาที่ขอ", retries=0)
        def choose_snapshot(request: dict, listing: str) -> str:
            """The newest snapshot taken at or before the request's `as_of`; none → the request fails, saying so."""
            try:
                snapshot = pipeline.chosen_snapshot(listing, request)
            except LookupError as err:
                raise AirflowFailException(f"{request['restore']['hostname']}: {err}") from err
            print(f"restoring from snapshot {snapshot['short_id']} taken {snapshot['time']}")
            return snapshot["id"]

        snapshot = choose_snapshot(request, list_snapshots.output)
        package = SSHOperator(
            task_id="package",
            task_display_name="กู้คืนและจัดทำ Restore File",
            doc_md="Restores the requested paths from the chosen snapshot, packs them with a SHA-256 "
            "manifest and delivers the package to the drop folder under the request's number. A path the "
            "snapshot does not hold fails the task with that message. Retries rebuild the package; a "
            "half-written file is never left under the final name.",
            command="{{ backup_script('restore_file', ti.xcom_pull(task_ids='validate_request'), run_id,"
            " snapshot=ti.xcom_pull(task_ids='restore_file.choose_snapshot')) }}",
            **ssh_defaults,
        )
        verify_delivery = SSHOperator(
            task_id="verify_delivery",
            task_display_name="ตรวจสอบ Restore File ที่ส่งมอบ",
            doc_md="Checks the delivered file's SHA-256 against the one computed before delivery, and every "
            "file inside against the package's manifest.",
            command="{% set r = backup_results(ti.xcom_pull(task_ids='restore_file.package'))[0] %}"
            "{{ backup_script('verify_delivery', ti.xcom_pull(task_ids='validate_request'), run_id,"
            " archive=r.archive, sha256=r.sha256) }}",
            **ssh_defaults,
        )
        chain(snapshot, package, verify_delivery)

    @task(
        task_id=pipeline.RESULT_TASK,
        task_display_name="ขั้นตอนที่ 7 แจ้งผลการดำเนินงานให้หน่วยงานผู้ร้องขอทราบ",
        retries=2,
    )
    def notify_result(hitl_output: dict, request: dict, ti=None, dag_run=None) -> bool:
        """
        E-mails the Thai result notice (HTML and plain text) with the result memo (PDF) to the
        requester, copied to the IT Centre, once: a retry after a sent notice sends nothing.
        """
        decision = pipeline.decision_record(hitl_output, request["services"])
        servers = pipeline.server_outcomes(
            request,
            ti.xcom_pull(task_ids=f"{pipeline.BACKUP_GROUP}.test_backup"),
            ti.xcom_pull(task_ids=f"{pipeline.BACKUP_GROUP}.test_restore"),
        )
        restored = pipeline.restore_outcome(
            request,
            ti.xcom_pull(task_ids=f"{pipeline.RESTORE_GROUP}.package"),
            ti.xcom_pull(task_ids=f"{pipeline.RESTORE_GROUP}.verify_delivery"),
        )
        context = pipeline.notice_context(request, decision, servers=servers, restored=restored)
        sent, _ = pipeline.send_memo_notice(dag_run.run_id, "result", context)
        set_run_note(dag_run.dag_id, dag_run.run_id, pipeline.done_note(request, servers, restored, dag_run.run_id))
        return sent

    @task(
        task_id=pipeline.REJECTION_TASK,
        task_display_name="แจ้งผลการพิจารณา (ไม่อนุมัติ)",
        retries=2,
    )
    def notify_rejection(hitl_output: dict, request: dict, dag_run=None) -> bool:
        """E-mails the rejection and its reason to the requester, once; the run then ends successfully."""
        decision = pipeline.decision_record(hitl_output, request["services"])
        sent, memo = pipeline.send_memo_notice(dag_run.run_id, "rejection", pipeline.notice_context(request, decision))
        append_run_note(dag_run.dag_id, dag_run.run_id, f"หนังสือแจ้งผล ที่ {memo['number']}: {memo['path']}")
        return sent

    @task(
        task_display_name="สรุปเวลาที่ใช้แต่ละขั้นตอน",
        trigger_rule="all_done",
        retries=2,
        retry_delay=timedelta(minutes=1),
    )
    def summarise_steps(dag_run=None) -> list[dict]:
        """
        Per step: start, end, due (working days), working time used, met or missed. Kept in the
        project's database for reporting and added to the run note. Rewrites the same rows on retry.
        """
        from datetime import UTC, datetime

        from sb87 import store
        from sb87.airflow_api import run_tasks
        from sb87.deadlines import step_clocks, summary_rows
        from sb87.workdays import default_calendar

        cal = default_calendar()
        rows = summary_rows(
            step_clocks(run_tasks(dag_run.dag_id, dag_run.run_id), limits_from_config(), cal), datetime.now(UTC), cal
        )
        store.save_summary(store.project_engine(), dag_run.run_id, rows)
        lines = [f"{r['step']}: {r['working_days_used']} วันทำการ ({r['met']})" for r in rows]
        append_run_note(dag_run.dag_id, dag_run.run_id, "\n".join(["สรุปเวลา:", *lines]))
        return [{**r, **{k: r[k].isoformat() if r[k] else None for k in ("started_at", "ended_at", "due_at")}}
                for r in rows]

    result = notify_result(director_decision.output, request)
    rejection = notify_rejection(director_decision.output, request)
    # Same reason as the document join: the result notice has the decision and the request as
    # arguments, so steps 5 and 6 are joined on their own and a rejected run skips the notice.
    work_finished = EmptyOperator(
        task_id=pipeline.WORK_FINISHED_TASK,
        task_display_name="งานขั้นตอนที่ 5–6 เสร็จแล้ว",
        doc_md="Succeeds once the chosen technical steps have finished without failure.",
        trigger_rule="none_failed_min_one_success",
    )
    chain(route_work, [backup_test, restore_file], work_finished, result)
    route >> rejection
    [result, rejection] >> summarise_steps()
