"""SB-8-7's seven steps: the seed's table here, and one module per step beside it.

| step (seed) | module |
|---|---|
| 1 รับหนังสือเรื่องการร้องขอใช้บริการ | `step1_receive_memo` |
| 2 ผู้อำนวยการศูนย์ฯ สั่งการ | `step2_director_orders` |
| 3 ประสานงานหน่วยงานผู้ร้องขอและทีมที่ปรึกษา | `step3_coordinate` |
| 4 สั่งการให้เจ้าหน้าที่ดำเนินการ | `step4_order_staff` |
| 5 สร้าง Backup Policy และทดสอบ | `step5_backup_policy` |
| 6 จัดทำ Restore File ให้ตามต้องการ | `step6_restore_file` |
| 7 ทำหนังสือแจ้งหน่วยงานผู้ร้องขอฯ ทราบ | `step7_result_memo` |
| ปิดคำขอ (teardown) | `closing` |

This package's own module is the table (step number, Thai title, who acts, working-day limit, the
ids of the tasks that carry each step out). Each step module builds its step's tasks under those
ids; the deadline watch, the run note, the REST driver and the tests read the same names, and no
task id is written anywhere else. The table imports nothing of the project on purpose: anything may
import it (the deadline watch, the api-server's middleware) without pulling in the steps' operators.
"""

from __future__ import annotations

from dataclasses import dataclass

DAG_ID = "sb87_server_backup_service"

# Roster roles (config/sb87.json "users[].roles").
IT_DIRECTOR = "it_director"
GROUP_DIRECTOR = "group_director"
STAFF = "staff"
OPERATOR = "operator"
ROLES = (IT_DIRECTOR, GROUP_DIRECTOR, STAFF, OPERATOR)

# Options of the decisions, as the people answering them read them.
APPROVE = "อนุมัติ"
REJECT = "ไม่อนุมัติ"
SUBMIT = "ส่งเอกสารให้ผู้อำนวยการกลุ่มฯ"
ENDORSE = "เห็นชอบ"
SEND_BACK = "ส่งกลับแก้ไข"
ORDER = "สั่งการให้ดำเนินการ"

MAX_ROUNDS = 3  # server-details document: recorded, then endorsed or sent back, at most this often


@dataclass(frozen=True)
class Step:
    """One row of the seed's table.

    `limit_key` names the step's limit in the organisation file's `step_limits_working_days`
    (None: the seed sets no limit). `group` is the task group that carries the step out; `tasks`
    are further task ids of the step outside any group. `answered_by` is the roster role whose
    people take the step's decisions (None: no decision, or one bound at run time to staff).
    """

    number: int
    key: str
    title: str
    english: str
    group: str | None = None
    tasks: tuple[str, ...] = ()
    limit_key: str | None = None
    answered_by: str | None = None

    def owns(self, task_id: str) -> bool:
        """Whether a task id (as the REST API gives it, group prefix included) belongs to this step."""
        return task_id in self.tasks or bool(self.group and task_id.startswith(f"{self.group}."))

    def task(self, name: str) -> str:
        """The full id of one of the step's grouped tasks (`backup_policy.create_policy`)."""
        if self.group is None:
            raise ValueError(f"step {self.number} has no task group")
        return f"{self.group}.{name}"


INTAKE = Step(1, "intake", "ขั้นตอนที่ 1 รับหนังสือและลงทะเบียนรับ", "receive the request memo",
              tasks=("validate_request", "register_receipt", "acknowledge", "check_restore_source"))
DIRECTOR = Step(2, "director_decision", "ขั้นตอนที่ 2 ผู้อำนวยการศูนย์ฯ พิจารณาสั่งการ",
                "the IT Centre Director decides", tasks=("director_decision", "record_decision", "route_decision"),
                limit_key="director_decision", answered_by=IT_DIRECTOR)
COORDINATION = Step(3, "coordination", "ขั้นตอนที่ 3 ประสานงานและจัดทำเอกสารระบุรายละเอียด",
                    "staff coordinate and record the server-details document", group="coordination",
                    limit_key="coordination", answered_by=GROUP_DIRECTOR)
ASSIGNMENT = Step(4, "assignment", "ขั้นตอนที่ 4 สั่งการให้เจ้าหน้าที่ดำเนินการ", "order staff to carry it out",
                  tasks=("assign_staff", "route_services"), answered_by=GROUP_DIRECTOR)
BACKUP_POLICY = Step(5, "backup_policy", "ขั้นตอนที่ 5 สร้างและทดสอบ Backup Policy",
                     "create and test the backup policy", group="backup_policy", limit_key="backup_policy")
RESTORE_FILE = Step(6, "restore_file", "ขั้นตอนที่ 6 จัดทำ Restore File ให้ตามต้องการ", "produce the Restore File",
                    group="restore_file", limit_key="restore_file")
RESULT = Step(7, "result_memo", "ขั้นตอนที่ 7 แจ้งผลการดำเนินงานให้หน่วยงานผู้ร้องขอทราบ",
              "inform the requesting unit", tasks=("notify_result", "notify_rejection"), limit_key="result_memo")

STEPS = (INTAKE, DIRECTOR, COORDINATION, ASSIGNMENT, BACKUP_POLICY, RESTORE_FILE, RESULT)
CLOSE_TASK = "close_request"  # teardown: per-step summary, and the IT Centre's alert when a step failed

# Task ids used across modules, named for what they are.
VALIDATE = "validate_request"
RECEIPT = "register_receipt"
ACKNOWLEDGE = "acknowledge"
RESTORE_SOURCE = "check_restore_source"
DIRECTOR_DECISION = "director_decision"
DECISION_RECORD = "record_decision"
ROUTE_DECISION = "route_decision"
ASSIGN = "assign_staff"
ROUTE_SERVICES = "route_services"
NOTIFY_RESULT = "notify_result"
NOTIFY_REJECTION = "notify_rejection"
DOCUMENT = COORDINATION.task("server_details_document")
DETAILS_ENDORSED = COORDINATION.task("details_endorsed")
ROUNDS_EXHAUSTED = COORDINATION.task("rounds_exhausted")
READINESS = BACKUP_POLICY.task("readiness")
FIRST_BACKUP_TASK = READINESS
FIRST_RESTORE_TASK = RESTORE_FILE.task("list_snapshots")
CHOOSE_SNAPSHOT = RESTORE_FILE.task("choose_snapshot")
DELIVERY = RESTORE_FILE.task("delivery")
#: Step 6's two deliveries, each (restore task, its check, the backend action of each): onto the unit's
#: own server into a new folder, or a Restore File archive on the unit's SFTP drop.
TO_SERVER = (RESTORE_FILE.task("restore_to_server"), RESTORE_FILE.task("verify_restore"))
ARCHIVE = (RESTORE_FILE.task("restore_archive"), RESTORE_FILE.task("verify_archive"))
POLICY_ACTIVE = BACKUP_POLICY.task("policy_active")


def details_task(round_no: int) -> str:
    """Step 3, round n: staff record the server-details document."""
    return COORDINATION.task(f"server_details_{round_no}")


def review_task(round_no: int) -> str:
    """Step 3, round n: the group/division director endorses it or sends it back."""
    return COORDINATION.task(f"review_details_{round_no}")


def endorsed_task(round_no: int) -> str:
    """Step 3, round n: reached when that round's document is endorsed."""
    return COORDINATION.task(f"endorsed_{round_no}")


def local_id(task_id: str) -> str:
    """A grouped task's id inside its group, as the step module declares it (`readiness`)."""
    return task_id.rsplit(".", 1)[-1]


def step_of(task_id: str) -> Step | None:
    """The step a task belongs to (None for the closing teardown)."""
    return next((s for s in STEPS if s.owns(task_id)), None)


def limited_steps() -> tuple[Step, ...]:
    """The steps the seed gives a working-day limit, in order."""
    return tuple(s for s in STEPS if s.limit_key)
