"""The trigger form of `sb87_server_backup_service`: the public contract for staff and REST clients.

Each conf key is a `Param` with a strict JSON schema built from the patterns in `sb87.intake_rules.request`,
so the form, the REST API (HTTP 400 naming the param) and step 1 agree on what is valid. Each
field's label and help text come from `sb87.intake_rules.field_rules` (the rule in Thai and English), the same
words the api-server shows when it refuses a field. The defaults are the sample request, so the form
opens valid.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import Param

from sb87.intake_rules import request as rq
from sb87.intake_rules.field_rules import FIELD_RULES
from sb87.settings import PROJECT_ROOT

SAMPLE_REQUEST_FILE = PROJECT_ROOT / "config" / "sample_request.json"

MEMO = "หนังสือร้องขอ (บันทึกข้อความ)"
UNIT = "หน่วยงานผู้ร้องขอ"
SERVICE = "บริการที่ขอ"
BACKUP = "ใช้ระบบสำรองข้อมูล"
RESTORE = "ขอ Restore File"

AGENCY_EXAMPLES = [
    *(f"สำนักงานทางหลวงที่ {n}" for n in range(1, 19)),
    "แขวงทางหลวงสกลนครที่ 1",
    "สำนักแผนงาน",
    "สำนักบริหารบำรุงทาง",
    "สำนักอำนวยความปลอดภัย",
]


def _words(field: str) -> dict[str, str]:
    """The form's label and help text of `field`, from the one table of rules."""
    rule = FIELD_RULES[field]
    return {"title": rule.title, "description": rule.description}


def _text(max_len: int = rq.MAX_TEXT) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": rq.ONE_LINE}


def _paths() -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": rq.MAX_PATHS,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": rq.PATH, "maxLength": rq.MAX_PATH_BYTES},
    }


SERVER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["hostname", "address", "os", "paths", "size_gb"],
    "properties": {
        "hostname": {"type": "string", "pattern": rq.HOSTNAME, **_words("servers.hostname")},
        "address": {
            "type": "string",
            "pattern": f"{rq.HOSTNAME}|^[0-9a-fA-F:.]{{2,45}}{rq.END}",
            **_words("servers.address"),
        },
        "os": {**_text(100), **_words("servers.os")},
        "paths": {**_paths(), **_words("servers.paths")},
        "size_gb": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": rq.MAX_SIZE_GB,
            **_words("servers.size_gb"),
        },
    },
}

RESTORE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["hostname", "paths", "as_of"],
    "properties": {
        "hostname": {"type": "string", "pattern": rq.HOSTNAME, **_words("restore.hostname")},
        "paths": {**_paths(), **_words("restore.paths")},
        "as_of": {"type": "string", "pattern": rq.ISO_INSTANT_WITH_ZONE, **_words("restore.as_of")},
        "delivery": {"type": "string", "enum": list(rq.DELIVERIES), **_words("restore.delivery")},
    },
}


def sample_request() -> dict[str, Any]:
    return json.loads(SAMPLE_REQUEST_FILE.read_text(encoding="utf-8"))


class _SharedDict(dict):
    """A part of a param's JSON schema that deep copies share instead of copying."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedDict:
        return self


class _SharedList(list):
    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedList:
        return self


def _shared(value: Any) -> Any:
    if isinstance(value, dict):
        return _SharedDict({k: _shared(v) for k, v in value.items()})
    if isinstance(value, list):
        return _SharedList(_shared(v) for v in value)
    return value


#: The JSON Schema dialect of every field. Airflow serialises the DAG's params with each of its tasks and
#: validates each default against its schema every time (788 validations a parse of the request DAG), and
#: jsonschema checks the schema against its dialect's meta-schema first: 6.5 ms for these twelve under
#: the default 2020-12 meta-schema, 1.7 ms under draft 7's (no field uses a keyword newer than draft 7).
DIALECT = "http://json-schema.org/draft-07/schema#"


def _share_schemas(params: dict[str, Param]) -> dict[str, Param]:
    """Airflow deep-copies the DAG's params into every operator at every level of its class chain (112
    copies for this DAG), and copying these schemas was a third of a parse (bench/parse_time.py). A
    schema is never changed after the DAG is declared, so the copies may share it; the defaults, which
    a task may change, are still copied. Each schema names its dialect (`DIALECT`)."""
    for param in params.values():
        param.schema = {"$schema": DIALECT, **{key: _shared(value) for key, value in param.schema.items()}}
    return params


def request_params() -> dict[str, Param]:
    """The DAG's params, defaulting to the sample request (cheap: read at DAG parse time)."""
    s = sample_request()
    return _share_schemas({
        "memo_no": Param(s["memo_no"], type="string", pattern=rq.MEMO_NO, section=MEMO, **_words("memo_no")),
        "memo_date": Param(
            s["memo_date"], type="string", format="date", pattern=rq.ISO_DATE, section=MEMO, **_words("memo_date")
        ),
        "subject": Param(s["subject"], **_text(), section=MEMO, **_words("subject")),
        "agency": Param(s["agency"], **_text(150), section=UNIT, examples=AGENCY_EXAMPLES, **_words("agency")),
        "contact_name": Param(s["contact_name"], **_text(150), section=UNIT, **_words("contact_name")),
        "contact_email": Param(
            s["contact_email"],
            type="string",
            pattern=rq.EMAIL,
            maxLength=254,
            section=UNIT,
            **_words("contact_email"),
        ),
        "contact_phone": Param(
            s["contact_phone"], type="string", pattern=rq.PHONE, section=UNIT, **_words("contact_phone")
        ),
        "services": Param(
            s["services"],
            type="array",
            minItems=1,
            uniqueItems=True,
            items={"type": "string", "enum": list(rq.SERVICES)},
            examples=list(rq.SERVICES),
            values_display={"backup": BACKUP, "restore": RESTORE},
            section=SERVICE,
            **_words("services"),
        ),
        "servers": Param(
            s["servers"],
            type="array",
            maxItems=rq.MAX_SERVERS,
            items=SERVER_SCHEMA,
            section=BACKUP,
            **_words("servers"),
        ),
        "retention": Param(
            s["retention"],
            type="object",
            additionalProperties=False,
            required=list(rq.RETENTION_LIMITS),
            properties={k: {"type": "integer", "minimum": 0, "maximum": v} for k, v in rq.RETENTION_LIMITS.items()},
            section=BACKUP,
            **_words("retention"),
        ),
        "schedule": Param(s["schedule"], type="string", pattern=rq.SCHEDULE, section=BACKUP, **_words("schedule")),
        "restore": Param(s.get("restore"), **RESTORE_SCHEMA, section=RESTORE, **_words("restore")),
    })
