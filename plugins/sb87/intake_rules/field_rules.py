"""Each request field's rule in words, Thai and English: the one table behind the trigger form's help
texts (`sb87.intake_rules.params`) and the api-server's refusals (`sb87.intake_rules.api_messages`).

The rules say in words what the patterns and limits of `sb87.intake_rules.request` check, with the same numbers
(read from its constants, so a changed limit changes the words). A refusal shows the rule of the
deepest field that has one: `servers[0].paths[2]` → the rule of `servers.paths`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sb87.intake_rules import request as rq


@dataclass(frozen=True)
class FieldRule:
    title: str  # the form's Thai label
    thai: str
    english: str

    @property
    def description(self) -> str:
        """The trigger form's help text: the rule in Thai, then in English."""
        return f"{self.thai} ({self.english})"


def _one_line(title: str, max_len: int) -> FieldRule:
    return FieldRule(
        title,
        f"ข้อความบรรทัดเดียว 1–{max_len} ตัวอักษร ห้ามขึ้นบรรทัดใหม่หรือมีอักขระควบคุม",
        f"one line of 1–{max_len} characters, no line breaks or control characters",
    )


_HOSTNAME_TH = (
    "ชื่อเครื่องตาม RFC 1123: ตัวอักษรอังกฤษ ตัวเลข และ - แบ่งเป็นช่วงด้วยจุด แต่ละช่วง 1–63 ตัว "
    "ขึ้นต้นและลงท้ายด้วยตัวอักษรหรือตัวเลข รวมไม่เกิน 253 ตัว ไม่มีเว้นวรรค เช่น fileserver01.doh.local"
)
_HOSTNAME_EN = (
    "an RFC 1123 host name: dot-separated labels of Latin letters, digits and '-', each 1–63 characters "
    "starting and ending with a letter or digit, 253 in all, no spaces, e.g. fileserver01.doh.local"
)
_PATHS_TH = (
    f"path แบบเต็มที่ขึ้นต้นด้วย / จำนวน 1–{rq.MAX_PATHS} รายการไม่ซ้ำกัน ใช้ภาษาไทยและเว้นวรรคได้ "
    f"ห้ามมีช่วง . หรือ .. ห้ามมี $ ` \\ หรืออักขระควบคุม ยาวไม่เกิน {rq.MAX_PATH_BYTES} ไบต์ต่อรายการ "
    "ต้องอยู่ภายในโฟลเดอร์ข้อมูลที่ลงทะเบียนไว้ของเครื่องนั้น (data_roots ในทะเบียนเครื่อง) และไม่ใช่หรือครอบ"
    "โฟลเดอร์ของโปรแกรมสำรองข้อมูลที่เก็บกุญแจและรหัสผ่าน เช่น /srv/ข้อมูล กองทะเบียน"
)
_PATHS_EN = (
    f"1–{rq.MAX_PATHS} distinct absolute paths starting with '/'; Thai letters and spaces are fine; no '.' or "
    f"'..' segments, no $, back-tick, backslash or control characters; at most {rq.MAX_PATH_BYTES} bytes each; "
    "inside the server's registered data folders (data_roots in the inventory), never the backup client's own "
    "folder (its key and password) nor a folder that holds it"
)

FIELD_RULES: dict[str, FieldRule] = {
    "memo_no": FieldRule(
        "เลขที่หนังสือ",
        "อักษรไทยหรืออังกฤษ ตัวเลข เว้นวรรค . / หรือ - ไม่เกิน 40 ตัว และมีตัวเลขอย่างน้อยหนึ่งตัว เช่น ทล 0601/1234",
        "Thai or Latin letters, digits, spaces, '.', '/' or '-', at most 40 characters with at least one "
        "digit, e.g. ทล 0601/1234",
    ),
    "memo_date": FieldRule(
        "ลงวันที่",
        "วันที่ของหนังสือเป็น ค.ศ. รูปแบบ YYYY-MM-DD และไม่ใช่วันในอนาคต เช่น 2026-11-20",
        "the memo's date as YYYY-MM-DD (Gregorian), not in the future, e.g. 2026-11-20",
    ),
    "subject": _one_line("เรื่อง", rq.MAX_TEXT),
    "agency": _one_line("หน่วยงานผู้ร้องขอ", 150),
    "contact_name": _one_line("ผู้ประสานงาน", 150),
    "contact_email": FieldRule(
        "อีเมลผู้ประสานงาน",
        "อีเมล เช่น somying.t@doh.go.th: ก่อน @ เป็นตัวอักษรอังกฤษ ตัวเลข . _ % + - ไม่เกิน 64 ตัว "
        "หลัง @ เป็นชื่อโดเมนที่มีจุด ผลการดำเนินงานจะส่งถึงอีเมลนี้",
        "an e-mail address such as somying.t@doh.go.th: up to 64 Latin letters, digits or . _ % + - before "
        "the @ and a dotted domain name after it; the result is sent there",
    ),
    "contact_phone": FieldRule(
        "โทรศัพท์",
        "ตัวเลข เว้นวรรค + ( ) หรือ - จำนวน 3–30 ตัว ต่อท้ายเบอร์ภายในได้ เช่น 0 4271 1234 ต่อ 12",
        "3–30 digits, spaces, '+', '(', ')' or '-', optionally an extension, e.g. 0 4271 1234 ext. 12",
    ),
    "services": FieldRule(
        "บริการที่ขอ",
        "เลือกอย่างน้อยหนึ่งบริการ ไม่ซ้ำกัน: backup (ใช้ระบบสำรองข้อมูล) และ/หรือ restore (ขอ Restore File)",
        "at least one of backup (use the backup system) and restore (request a Restore File), each once",
    ),
    "servers": FieldRule(
        "เครื่อง Server ที่ฝาก",
        f"รายการเครื่องไม่เกิน {rq.MAX_SERVERS} เครื่อง (อย่างน้อย 1 เครื่องเมื่อขอ backup) แต่ละเครื่องมี "
        "hostname, address, os, paths, size_gb ครบ และไม่มีช่องอื่น",
        f"a list of at most {rq.MAX_SERVERS} servers (at least one for backup), each with exactly hostname, "
        "address, os, paths and size_gb",
    ),
    "servers.hostname": FieldRule("ชื่อเครื่อง (hostname)", _HOSTNAME_TH, _HOSTNAME_EN),
    "servers.address": FieldRule(
        "IP address หรือชื่อเครื่อง",
        "IP address (IPv4 หรือ IPv6) หรือชื่อเครื่องตาม RFC 1123 เช่น 10.1.2.3",
        "an IPv4 or IPv6 address, or an RFC 1123 host name, e.g. 10.1.2.3",
    ),
    "servers.os": _one_line("ระบบปฏิบัติการ", 100),
    "servers.paths": FieldRule("ข้อมูลที่ต้องการสำรอง (path)", _PATHS_TH, _PATHS_EN),
    "servers.size_gb": FieldRule(
        "ขนาด (GB)",
        f"ขนาดข้อมูลเป็น GB มากกว่า 0 และไม่เกิน {rq.MAX_SIZE_GB} เช่น 0.5",
        f"the data's size in GB, above 0 and at most {rq.MAX_SIZE_GB}, e.g. 0.5",
    ),
    "retention": FieldRule(
        "การเก็บรักษาข้อมูลสำรอง",
        "จำนวนชุดที่เก็บเป็นจำนวนเต็ม ครบทั้งสามช่อง: "
        + ", ".join(f"{k} 0–{v}" for k, v in rq.RETENTION_LIMITS.items())
        + " และรวมกันอย่างน้อย 1 ชุด",
        "whole numbers of snapshots to keep, all three given: "
        + ", ".join(f"{k} 0–{v}" for k, v in rq.RETENTION_LIMITS.items())
        + ", at least one in all",
    ),
    "schedule": FieldRule(
        "ตารางเวลาสำรองข้อมูล",
        "daily HH:MM หรือ weekly วัน HH:MM (mon tue wed thu fri sat sun) หรือ monthly วันที่ HH:MM (1–28) "
        "เวลาไทยแบบ 24 ชั่วโมง เช่น daily 01:00, weekly sat 22:30",
        "daily HH:MM, weekly <mon…sun> HH:MM or monthly <1–28> HH:MM, 24-hour Bangkok time, "
        "e.g. daily 01:00, weekly sat 22:30",
    ),
    "restore": FieldRule(
        "ขอ Restore File",
        "ว่าง (null) เมื่อไม่ขอ Restore File มิฉะนั้นระบุ {hostname, paths, as_of} ครบ และ delivery ได้ ไม่มีช่องอื่น",
        "null when no Restore File is asked for, else exactly {hostname, paths, as_of} and optionally delivery",
    ),
    "restore.hostname": FieldRule("เครื่องที่ขอกู้คืน", _HOSTNAME_TH, _HOSTNAME_EN),
    "restore.paths": FieldRule("ข้อมูลที่ขอกู้คืน (path)", _PATHS_TH, _PATHS_EN),
    "restore.delivery": FieldRule(
        "วิธีส่งมอบ",
        "server = กู้คืนลงเครื่องของหน่วยงานในโฟลเดอร์ใหม่ตามเลขที่หนังสือ (ค่าเริ่มต้น), "
        "archive = ไฟล์ tar.zst (หรือ zip สำหรับ Windows) ให้หน่วยงานดาวน์โหลดทาง SFTP",
        "server = restored onto the unit's own server into a new folder named for the memo (default); "
        "archive = a tar.zst (zip for Windows) file the unit fetches over SFTP",
    ),
    "restore.as_of": FieldRule(
        "ข้อมูล ณ เวลา",
        "วันเวลาแบบ ISO 8601 พร้อมเขตเวลา และไม่ใช่เวลาในอนาคต เช่น 2026-11-20T18:00:00+07:00",
        "an ISO 8601 date and time with its zone, not in the future, e.g. 2026-11-20T18:00:00+07:00",
    ),
}

_INDEX = re.compile(r"\[[^\]]*\]")


def rule_for(field: str) -> tuple[str, FieldRule] | None:
    """The rule that explains `field` (`servers[0].paths[2]`): (the rule's key, the rule), or None.

    Indexes are dropped, then the path is shortened from the right until a rule is found, so a field
    without its own words (`retention.daily`) is explained by its parent's.
    """
    parts = _INDEX.sub("", field).split(".")
    while parts:
        key = ".".join(parts)
        if key in FIELD_RULES:
            return key, FIELD_RULES[key]
        parts.pop()
    return None


def description(field: str) -> str:
    """The Param description of a top-level request field: its rule in Thai and English."""
    return FIELD_RULES[field].description
