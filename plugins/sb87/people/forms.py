"""The forms of the human decisions (steps 2–4): each field's `Param`, its Thai title and its rule.

A form opens valid: every field's default passes its own schema, or the HITL task would fail as it
starts ("No value passed and Param has no default value").

Required or optional, as the Airflow 3.3 UI decides it (its flexible form, `ui/dist`): a field is
*required* when its schema has a `type` that is not a list containing "null"; an empty required
field (null, undefined or "") marks the form invalid and disables **every** option button. The UI
also turns a cleared text box or an emptied multi-select into `null`. So an optional field here is
`type: [<type>, "null"]` (it may come back as null), and a required one is a plain `type`.

Which options need a field (a reason to reject or to send back) cannot be said in a Param schema:
`REASON_REQUIRED` names them, and the api-server plugin refuses such an answer (HTTP 400) before
Airflow records it (`sb87.intake_rules.api_messages`).

`description` is shown as plain text under the field; Markdown would need `description_md`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Param
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from sb87 import steps
from sb87.intake_rules.request import MULTI_LINE, ONE_LINE
from sb87.settings import organisation

DIRECTOR_REASON = "เหตุผล / ความเห็น"
REVIEW_REASON = "เหตุผล / สิ่งที่ต้องแก้ไข"


@dataclass(frozen=True)
class ReasonRule:
    """Choosing `option` in this decision needs a non-blank `field` (labelled `title` in the form)."""

    option: str
    field: str
    title: str
    english: str


# Decisions whose option needs a field of the same form filled in, by task id.
REASON_REQUIRED: dict[str, ReasonRule] = {
    steps.DIRECTOR_DECISION: ReasonRule(steps.REJECT, "reason", DIRECTOR_REASON, "a reason is required to reject"),
    **{
        steps.review_task(n): ReasonRule(
            steps.SEND_BACK, "reason", REVIEW_REASON, "say what to correct when sending the document back"
        )
        for n in range(1, steps.MAX_ROUNDS + 1)
    },
}


def _required_text(title: str, default: str = "", max_length: int = 200, **extra: Any) -> Param:
    # One line: these values go into a PDF table and e-mails; newlines would break their layout.
    return Param(default, type="string", maxLength=max_length, pattern=ONE_LINE, title=title, **extra)


def _optional_text(title: str, max_length: int = 200, *, multiline: bool = False, **extra: Any) -> Param:
    schema: dict[str, Any] = {"format": "multiline", "pattern": MULTI_LINE} if multiline else {"pattern": ONE_LINE}
    return Param(None, type=["string", "null"], maxLength=max_length, title=title, **schema, **extra)


def director_params() -> dict[str, Param]:
    """Step 2: the IT Centre Director's reason and the sub-units that take the work (both optional)."""
    org = organisation()
    return {
        "reason": _optional_text(
            DIRECTOR_REASON,
            max_length=1000,
            multiline=True,
            description="อนุมัติ: ไม่ต้องกรอก · ไม่อนุมัติ: ต้องระบุเหตุผล ไม่เกิน 1,000 ตัวอักษร ข้อความนี้ส่งถึงหน่วยงานผู้ร้องขอ "
            "(Approve: leave empty. Reject: a reason of at most 1,000 characters is required; it is sent to "
            "the requesting unit.)",
        ),
        "sub_units": Param(
            [],
            type=["array", "null"],
            items={"type": "string", "enum": org.sub_unit_codes},
            uniqueItems=True,
            title="หน่วยงานที่รับผิดชอบ",
            description="เว้นว่างไว้ = ตามประเภทบริการที่ขอ (empty = the sub-units of the requested services)",
            examples=org.sub_unit_codes,
            values_display={code: org.sub_unit_name(code) for code in org.sub_unit_codes},
        ),
    }


#: The document's fields that the backup policy is built from. They are the request's own values, shown
#: read-only on the form's page and in the memo, never form fields: what the group/division director
#: endorses is what step 5 runs (docs/decisions.md). A correction means a new request.
POLICY_FIELDS = ("server_name", "address", "data_paths", "size_gb", "backup_window", "retention_period")


def details_params() -> dict[str, Param]:
    """Step 3: what staff add to the server-details document (pre-filled when it opens).

    Required: the operating system; the rest is optional and prints as "-" in the PDF. The fields the
    policy is built from (`POLICY_FIELDS`) are not here: they come from the request, read-only.

    No name may repeat a request field: Airflow lets the run's conf override a task param of the
    same name, so `retention` here would receive the request's retention object.
    """
    return {
        "os": _required_text("ระบบปฏิบัติการ", max_length=100),
        "location": _optional_text("ตำแหน่งติดตั้งในศูนย์ข้อมูล", description="เช่น ห้อง DC ชั้น 3 ตู้ R04 ช่อง U12"),
        "unit_contacts": _optional_text("ผู้ประสานงานของหน่วยงาน", max_length=500),
        "consultant_contacts": _optional_text("ผู้ประสานงานทีมที่ปรึกษา", max_length=500),
        "notes": _optional_text("หมายเหตุ", max_length=2000, multiline=True),
    }


def review_params() -> dict[str, Param]:
    """Step 3: the group/division director's reason for sending the document back (optional to endorse)."""
    return {
        "reason": _optional_text(
            REVIEW_REASON,
            max_length=1000,
            multiline=True,
            description="เห็นชอบ: ไม่ต้องกรอก · ส่งกลับแก้ไข: ต้องระบุ ไม่เกิน 1,000 ตัวอักษร ข้อความนี้ส่งถึงเจ้าหน้าที่ "
            "(Endorse: leave empty. Send back: required, at most 1,000 characters; it is sent to the staff.)",
        )
    }


def assign_params() -> dict[str, Param]:
    """Step 4: the staff ordered to do the work (at least one), and the order's instructions (optional)."""
    staff = organisation().with_role(steps.STAFF)
    ids = [p.id for p in staff]
    return {
        "staff": Param(
            ids[:1],
            type="array",
            items={"type": "string", "enum": ids},
            minItems=1,
            uniqueItems=True,
            title="เจ้าหน้าที่ผู้ดำเนินการ",
            examples=ids,
            values_display={p.id: p.name for p in staff},
        ),
        "instructions": _optional_text("ข้อสั่งการ", max_length=1000, multiline=True),
    }


#: Each decision's form, by task id: what an answer may hold.
FORMS: dict[str, Callable[[], dict[str, Param]]] = {
    steps.DIRECTOR_DECISION: director_params,
    steps.ASSIGN: assign_params,
    **{steps.details_task(n): details_params for n in range(1, steps.MAX_ROUNDS + 1)},
    **{steps.review_task(n): review_params for n in range(1, steps.MAX_ROUNDS + 1)},
}

#: What a broken rule means, in Thai and English, by JSON-schema keyword.
_RULE_WORDS: dict[str, tuple[str, str]] = {
    "maxLength": ("ยาวเกิน {maxLength} ตัวอักษร", "longer than {maxLength} characters"),
    "minLength": ("สั้นกว่า {minLength} ตัวอักษร", "shorter than {minLength} characters"),
    "pattern": ("มีอักขระที่ใช้ไม่ได้ (ขึ้นบรรทัดใหม่ในช่องบรรทัดเดียว อักขระควบคุม หรืออักขระที่มองไม่เห็น)",
                "holds a character not allowed here (a line break in a one-line field, a control character, "
                "or an invisible one such as a zero-width space or a right-to-left override)"),
    "type": ("ชนิดข้อมูลไม่ถูกต้อง", "has the wrong type"),
    "enum": ("ไม่ใช่ค่าที่เลือกได้", "is not one of the values offered"),
    "minItems": ("ต้องเลือกอย่างน้อย {minItems} รายการ", "needs at least {minItems} item(s)"),
    "uniqueItems": ("มีรายการซ้ำ", "repeats an item"),
    "minimum": ("ต่ำกว่า {minimum}", "is below {minimum}"),
    "maximum": ("สูงกว่า {maximum}", "is above {maximum}"),
}


@dataclass(frozen=True)
class AnswerRefused:
    """Why an answer cannot be taken: the field, and the rule it breaks in Thai and in English."""

    field: str
    thai: str
    english: str

    @property
    def detail(self) -> str:
        return f"ช่อง {self.field}: {self.thai} | Field {self.field}: {self.english}"


def _broken_rule(field: str, param: Param, value: Any) -> AnswerRefused | None:
    schema = param.schema
    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: len(e.path))), None)
    if error is None:
        return None
    where = field + "".join(f"[{p}]" for p in error.path)
    thai, english = _RULE_WORDS.get(error.validator, ("ไม่ตรงตามเงื่อนไขของแบบฟอร์ม", "breaks the form's rule"))
    values = error.schema if isinstance(error.schema, dict) else {}
    try:
        return AnswerRefused(where, thai.format(**values), english.format(**values))
    except (KeyError, IndexError):
        return AnswerRefused(where, thai, english)


def answer_problem(task_id: str, answer: Any) -> AnswerRefused | None:
    """What is wrong with an answer to the decision `task_id` before Airflow stores it, or None.

    The same rules the decision task applies when it reads the answer (`HITLOperator` resolves every
    field through its `Param`, refuses keys the form does not have; `REASON_REQUIRED`), so an answer
    taken here cannot fail the task. None also for a task that is not one of these decisions.
    """
    form = FORMS.get(task_id)
    if form is None:
        return None
    if not isinstance(answer, dict):
        return AnswerRefused("body", "คำตอบต้องเป็น JSON object", "the answer must be a JSON object")
    chosen = answer.get("chosen_options")
    if not isinstance(chosen, list) or not chosen or not all(isinstance(c, str) for c in chosen):
        return AnswerRefused("chosen_options", "ต้องเป็นรายการชื่อตัวเลือกอย่างน้อยหนึ่งรายการ",
                             "must be a list of at least one option name")
    given = answer.get("params_input") or {}
    if not isinstance(given, dict):
        return AnswerRefused("params_input", "ต้องเป็น JSON object ของช่องในแบบฟอร์ม",
                             "must be a JSON object of the form's fields")
    fields = form()
    for key in given:
        if key not in fields:
            return AnswerRefused(str(key)[:80], "ไม่มีช่องนี้ในแบบฟอร์ม", "the form has no such field")
    for key, value in given.items():
        if refused := _broken_rule(key, fields[key], value):
            return refused
    rule = REASON_REQUIRED.get(task_id)
    if rule and rule.option in chosen:
        reason = given.get(rule.field)
        if not (isinstance(reason, str) and reason.strip()):
            return AnswerRefused(rule.field, f'เลือก "{rule.option}" ต้องกรอกช่อง "{rule.title}"',
                                 f'to choose "{rule.option}", fill in "{rule.title}": {rule.english}')
    return None
