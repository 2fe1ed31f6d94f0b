"""The trigger form of `sb87_server_backup_service`: the public contract for staff and REST clients.

Each conf key is a `Param` with a strict JSON schema built from the patterns in `sb87.request`,
so the form, the REST API (HTTP 400 naming the param) and step 1 agree on what is valid. The
defaults are the sample request, so the form opens valid.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import Param

from sb87 import request as rq
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
        "hostname": {"type": "string", "pattern": rq.HOSTNAME, "title": "ชื่อเครื่อง (hostname)"},
        "address": {
            "type": "string",
            "pattern": f"{rq.HOSTNAME}|^[0-9a-fA-F:.]{{2,45}}{rq.END}",
            "title": "IP address หรือชื่อเครื่อง",
        },
        "os": {**_text(100), "title": "ระบบปฏิบัติการ"},
        "paths": {**_paths(), "title": "ข้อมูลที่ต้องการสำรอง (path)"},
        "size_gb": {"type": "number", "exclusiveMinimum": 0, "maximum": rq.MAX_SIZE_GB, "title": "ขนาด (GB)"},
    },
}

RESTORE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["hostname", "paths", "as_of"],
    "properties": {
        "hostname": {"type": "string", "pattern": rq.HOSTNAME},
        "paths": _paths(),
        "as_of": {"type": "string", "pattern": rq.ISO_INSTANT_WITH_ZONE},
    },
}


def sample_request() -> dict[str, Any]:
    return json.loads(SAMPLE_REQUEST_FILE.read_text(encoding="utf-8"))


def request_params() -> dict[str, Param]:
    """The DAG's params, defaulting to the sample request (cheap: read at DAG parse time)."""
    s = sample_request()
    return {
        "memo_no": Param(s["memo_no"], type="string", pattern=rq.MEMO_NO, section=MEMO,
                         title="เลขที่หนังสือ", description="เลขที่บันทึกข้อความของหน่วยงาน เช่น ทล 0601/1234"),
        "memo_date": Param(s["memo_date"], type="string", format="date", pattern=rq.ISO_DATE, section=MEMO,
                           title="ลงวันที่", description="วันที่ของหนังสือ (ค.ศ. YYYY-MM-DD)"),
        "subject": Param(s["subject"], **_text(), section=MEMO, title="เรื่อง"),
        "agency": Param(s["agency"], **_text(150), section=UNIT, examples=AGENCY_EXAMPLES,
                        title="หน่วยงานผู้ร้องขอ", description="เช่น สำนักงานทางหลวงที่ 1, แขวงทางหลวงสกลนครที่ 1"),
        "contact_name": Param(s["contact_name"], **_text(150), section=UNIT, title="ผู้ประสานงาน"),
        "contact_email": Param(s["contact_email"], type="string", pattern=rq.EMAIL, maxLength=254,
                               section=UNIT, title="อีเมลผู้ประสานงาน",
                               description="ผลการดำเนินงานจะส่งถึงอีเมลนี้"),
        "contact_phone": Param(s["contact_phone"], type="string", pattern=rq.PHONE, section=UNIT,
                               title="โทรศัพท์"),
        "services": Param(s["services"], type="array", minItems=1, uniqueItems=True,
                          items={"type": "string", "enum": list(rq.SERVICES)}, examples=list(rq.SERVICES),
                          values_display={"backup": BACKUP, "restore": RESTORE}, section=SERVICE,
                          title="บริการที่ขอ", description="ใช้ระบบสำรองข้อมูล และ/หรือ ขอ Restore File"),
        "servers": Param(s["servers"], type="array", maxItems=rq.MAX_SERVERS, items=SERVER_SCHEMA,
                         section=BACKUP, title="เครื่อง Server ที่ฝาก",
                         description="[{hostname, address, os, paths[], size_gb}] — path ภาษาไทยและเว้นวรรคได้"),
        "retention": Param(
            s["retention"], type="object", additionalProperties=False,
            required=list(rq.RETENTION_LIMITS),
            properties={k: {"type": "integer", "minimum": 0, "maximum": v} for k, v in rq.RETENTION_LIMITS.items()},
            section=BACKUP, title="การเก็บรักษาข้อมูลสำรอง", description="จำนวนชุดที่เก็บ: รายวัน รายสัปดาห์ รายเดือน",
        ),
        "schedule": Param(s["schedule"], type="string", pattern=rq.SCHEDULE, section=BACKUP,
                          title="ตารางเวลาสำรองข้อมูล",
                          description="daily HH:MM | weekly mon..sun HH:MM | monthly 1..28 HH:MM (เวลาไทย)"),
        "restore": Param(s.get("restore"), **RESTORE_SCHEMA, section=RESTORE, title="ขอ Restore File",
                         description="{hostname, paths[], as_of} — as_of เป็น ISO 8601 พร้อมเขตเวลา"),
    }
