"""The service request: its patterns (shared with the trigger form's schemas) and its validation.

Step 1 of SB-8-7 receives a memo; staff type its details into the trigger form. The JSON schemas
in `sb87.intake_rules.params` refuse what they can at trigger time (HTTP 400 naming the param); this module
checks the whole request again plus what a schema cannot express (relations between fields,
dates in the future, RFC 1123 label lengths, duplicate servers) and reports every bad field at once.

What the checks are for: values reach e-mail headers (so one-line texts have no CR/LF) and backup
scripts over SSH. Scripts quote every value, so the path rules refuse only what is dangerous or
meaningless (`..`, control characters, `$`, back-ticks, backslashes); Thai letters, spaces and other
punctuation are normal on government file servers and are accepted. Glob characters (`*?[`) are
accepted too: backends pass paths literally (restic `--files-from-verbatim`, `dump`) or escape them.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sb87.settings import settings

# Patterns are written for both Python's `re` and the browser's (ECMAScript) regex engine. `$` is
# not used as the end anchor because Python's `$` also matches before a final newline: "host\n"
# would pass. `END` (no character follows) means the same in both engines.
END = r"(?![\s\S])"
CONTROL = "\\u0000-\\u001f\\u007f"
#: Characters a reader cannot see that change what a text shows: zero-width spaces and joiners, bidi
#: marks, embeddings, overrides and isolates (U+202E reverses the text after it), the word joiner,
#: the byte-order mark and the Hangul fillers. A "required" reason made of them reads as blank.
INVISIBLE = "\\u115f\\u1160\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\u3164\\ufeff"
ONE_LINE = f"^[^{CONTROL}{INVISIBLE}]*{END}"
#: Free text of several lines (a reason, notes): line breaks and tabs allowed, nothing else invisible.
MULTI_LINE = f"^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f{INVISIBLE}]*{END}"
HOSTNAME = (
    rf"^(?=.{{1,253}}{END})[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)*{END}"
)
PATH = f"^(?:/(?!\\.{{1,2}}(?:/|{END}))[^/{CONTROL}$`\\\\]+)+{END}"
MEMO_NO = rf"^(?=.*[0-9])[\u0E00-\u0E7FA-Za-z0-9 ./-]{{1,40}}{END}"
EMAIL = (
    rf"^[A-Za-z0-9._%+-]{{1,64}}@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)+{END}"
)
PHONE = rf"^[0-9+() -]{{3,30}}(?: *(?:ต่อ|ext\.?) *[0-9]{{1,6}})?{END}"
ISO_DATE = rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{END}"
ISO_INSTANT_WITH_ZONE = (
    rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}(?::[0-9]{{2}}(?:\.[0-9]{{1,9}})?)?"
    rf"(?:Z|[+-][0-9]{{2}}:[0-9]{{2}}){END}"
)
SCHEDULE = (
    r"^(?:daily|weekly (?:mon|tue|wed|thu|fri|sat|sun)|monthly (?:[1-9]|1[0-9]|2[0-8])) "
    rf"(?:[01][0-9]|2[0-3]):[0-5][0-9]{END}"
)
SERVICES = ("backup", "restore")
DELIVERIES = ("server", "archive")  # a Restore File: onto the unit's own server, or an archive on its drop

MAX_TEXT = 300
MAX_SERVERS = 20
MAX_PATHS = 50
MAX_PATH_BYTES = 4096
MAX_SIZE_GB = 100_000
RETENTION_LIMITS = {"daily": 3650, "weekly": 520, "monthly": 240}


class RequestInvalid(ValueError):
    """A request with bad fields; `errors` maps each field path (`servers[0].paths[1]`) to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        lines = "\n".join(f"- {field}: {why}" for field, why in self.errors.items())
        super().__init__(f"คำขอไม่ถูกต้อง {len(self.errors)} รายการ (request refused, bad fields):\n{lines}")


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, field: str, thai: str, english: str, value: Any = None) -> None:
        shown = "" if value is None else f": {value!r}"[:120]
        self.errors.setdefault(field, f"{thai} ({english}){shown}")

    def text(self, conf: Mapping[str, Any], key: str, field: str, thai: str, max_len: int = MAX_TEXT) -> str:
        value = conf.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"ต้องระบุ{thai}", "required text")
            return ""
        value = value.strip()
        if not re.match(ONE_LINE, value):
            self.fail(field, f"{thai}ต้องเป็นข้อความบรรทัดเดียว ห้ามมีอักขระควบคุมหรือขึ้นบรรทัดใหม่",
                      "one line, no control characters or CR/LF", value)
        elif len(value) > max_len:
            self.fail(field, f"{thai}ยาวเกิน {max_len} ตัวอักษร", f"longer than {max_len} characters")
        return value

    def pattern(self, value: Any, regex: str, field: str, thai: str, english: str) -> str:
        if not isinstance(value, str) or not re.match(regex, value):
            self.fail(field, thai, english, value)
            return ""
        return value

    def hostname(self, value: Any, field: str) -> str:
        host = self.pattern(value, HOSTNAME, field, "ชื่อเครื่องไม่ถูกต้องตาม RFC 1123", "invalid RFC 1123 host name")
        return host.lower().rstrip(".")

    def address(self, value: Any, field: str) -> str:
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_address(value.strip()))
            except ValueError:
                pass
        return self.hostname(value, field)

    def path(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.startswith("/"):
            self.fail(field, "ต้องเป็น path แบบเต็มที่ขึ้นต้นด้วย /", "absolute path required", value)
            return ""
        if re.search(f"[{CONTROL}]", value):
            self.fail(field, "path มีอักขระควบคุมหรือขึ้นบรรทัดใหม่", "control character or newline in path", value)
            return ""
        if any(ch in value for ch in "$`\\"):
            self.fail(field, "path ห้ามมี $ ` หรือ \\", "no $, back-tick or backslash in paths", value)
            return ""
        segments = value.split("/")[1:]
        if any(seg in (".", "..") for seg in segments):
            self.fail(field, "path ห้ามมีส่วน . หรือ ..", "no . or .. segments", value)
            return ""
        if len(value.encode()) > MAX_PATH_BYTES:
            self.fail(field, f"path ยาวเกิน {MAX_PATH_BYTES} ไบต์", "path too long")
            return ""
        normal = posixpath.normpath(value)
        if normal == "/" or "//" in value.rstrip("/") or normal != value.rstrip("/"):
            self.fail(field, "path ต้องอยู่ในรูปแบบปกติ (ไม่มี // และไม่ใช่ / ทั้งเครื่อง)",
                      "normalised path, not the root", value)
            return ""
        return normal

    def paths(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, list) or not value:
            self.fail(field, "ต้องระบุ path อย่างน้อย 1 รายการ", "at least one path")
            return []
        if len(value) > MAX_PATHS:
            self.fail(field, f"ระบุ path ได้ไม่เกิน {MAX_PATHS} รายการ", f"at most {MAX_PATHS} paths")
        result = [self.path(p, f"{field}[{i}]") for i, p in enumerate(value[:MAX_PATHS])]
        if len(set(result)) != len(result):
            self.fail(field, "path ซ้ำกัน", "duplicate paths")
        return result

    def past_date(self, value: Any, field: str, thai: str) -> str:
        text = self.pattern(value, ISO_DATE, field, f"{thai}ต้องอยู่ในรูปแบบ YYYY-MM-DD", "date as YYYY-MM-DD")
        if text:
            try:
                if date.fromisoformat(text) > datetime.now(UTC).date():
                    self.fail(field, f"{thai}เป็นวันในอนาคต", "date in the future", text)
            except ValueError:
                self.fail(field, f"{thai}ไม่ใช่วันที่จริง", "not a real date", text)
        return text


def _servers(c: _Checker, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        c.fail("servers", "servers ต้องเป็นรายการ", "a list of servers")
        return []
    if len(value) > MAX_SERVERS:
        c.fail("servers", f"ระบุเครื่องได้ไม่เกิน {MAX_SERVERS} เครื่อง", f"at most {MAX_SERVERS} servers")
    servers = []
    for i, raw in enumerate(value[:MAX_SERVERS]):
        field = f"servers[{i}]"
        if not isinstance(raw, Mapping):
            c.fail(field, "ข้อมูลเครื่องต้องเป็น object", "an object per server")
            continue
        size = raw.get("size_gb")
        if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size <= MAX_SIZE_GB:
            c.fail(f"{field}.size_gb", f"ขนาดข้อมูลต้องมากกว่า 0 และไม่เกิน {MAX_SIZE_GB} GB",
                   f"size in GB, 0 < size <= {MAX_SIZE_GB}", size)
        servers.append({
            "hostname": c.hostname(raw.get("hostname"), f"{field}.hostname"),
            "address": c.address(raw.get("address"), f"{field}.address"),
            "os": c.text(raw, "os", f"{field}.os", "ระบบปฏิบัติการ", 100),
            "paths": c.paths(raw.get("paths"), f"{field}.paths"),
            "size_gb": size,
        })
    seen: dict[str, int] = {}
    for i, server in enumerate(servers):
        host = server["hostname"]
        if host and host in seen:
            c.fail(f"servers[{i}].hostname", f"ชื่อเครื่องซ้ำกับ servers[{seen[host]}]",
                   "the same server twice", host)
        seen.setdefault(host, i)
    return servers


def _retention(c: _Checker, value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        c.fail("retention", "ต้องระบุการเก็บรักษา {daily, weekly, monthly}", "retention object required")
        return {}
    result = {}
    for key, limit in RETENTION_LIMITS.items():
        n = value.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= limit:
            c.fail(f"retention.{key}", f"ต้องเป็นจำนวนเต็ม 0–{limit}", f"integer 0..{limit}", n)
        result[key] = n
    if all(isinstance(n, int) for n in result.values()) and sum(result.values()) == 0:
        c.fail("retention", "ต้องเก็บข้อมูลสำรองไว้อย่างน้อย 1 ชุด", "keep at least one snapshot")
    return result


def _restore(c: _Checker, value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        c.fail("restore", "ต้องระบุ restore {hostname, paths, as_of} เมื่อขอ Restore File",
               "restore details required for the restore service")
        return None
    as_of = c.pattern(value.get("as_of"), ISO_INSTANT_WITH_ZONE, "restore.as_of",
                      "เวลาต้องเป็น ISO 8601 พร้อมเขตเวลา เช่น 2026-11-20T17:00:00+07:00",
                      "ISO 8601 instant with a time zone")
    if as_of:
        try:
            instant = datetime.fromisoformat(as_of)
            if instant > datetime.now(UTC):
                c.fail("restore.as_of", "เวลาที่ขอกู้คืนเป็นเวลาในอนาคต", "instant in the future", as_of)
            as_of = instant.isoformat()
        except ValueError:
            c.fail("restore.as_of", "ไม่ใช่วันเวลาจริง", "not a real instant", as_of)
    restore = {
        "hostname": c.hostname(value.get("hostname"), "restore.hostname"),
        "paths": c.paths(value.get("paths"), "restore.paths"),
        "as_of": as_of,
    }
    if value.get("delivery") is not None:
        if value["delivery"] not in DELIVERIES:
            c.fail("restore.delivery", "วิธีส่งมอบต้องเป็น server หรือ archive", "server or archive", value["delivery"])
        restore["delivery"] = value["delivery"]
    return restore


def _registered(c: _Checker, request: Mapping[str, Any], inventory: Mapping[str, Mapping[str, Any]]) -> None:
    """Only servers the IT Centre has registered are backed up or restored, at their registered address,
    only for the unit the inventory says owns them (a server of another unit is refused at intake,
    not at step 6 after every human step), and only inside their registered `data_roots` (not /etc,
    not /root/.ssh)."""
    named = [(f"servers[{i}]", s["hostname"], s["address"]) for i, s in enumerate(request.get("servers", []))]
    if (restore := request.get("restore") or {}).get("hostname"):
        named.append(("restore", restore["hostname"], None))
    for field, host, address in named:
        entry = inventory.get(host)
        if host and entry is None:
            c.fail(f"{field}.hostname", "เครื่องนี้ยังไม่ได้ลงทะเบียนกับศูนย์ฯ", "server not registered", host)
        elif entry and entry.get("agency") and entry["agency"] != request["agency"]:
            c.fail(f"{field}.hostname", f"เครื่องนี้ลงทะเบียนเป็นของ{entry['agency']} ไม่ใช่ของหน่วยงานผู้ร้องขอ",
                   "server registered to another unit", host)
        elif entry and address and address != entry["address"]:
            c.fail(f"{field}.address", f"ไม่ตรงกับที่ลงทะเบียนไว้ ({entry['address']})",
                   "address differs from the registered one", address)
    for field, paths, host in _named_paths(request):
        roots = [posixpath.normpath(str(r)) for r in (inventory.get(host) or {}).get("data_roots") or ()]
        for i, path in enumerate(paths):
            if path and host in inventory and not any(inside(path, root) for root in roots):
                shown = ", ".join(roots) or "ไม่มี / none"
                c.fail(f"{field}[{i}]", f"path อยู่นอกโฟลเดอร์ข้อมูลที่ลงทะเบียนไว้ของเครื่องนี้ ({shown})",
                       f"outside the server's registered data folders, data_roots: {shown}", path)


def inside(path: str, folder: str) -> bool:
    """`path` is `folder` or lies under it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _named_paths(request: Mapping[str, Any]) -> list[tuple[str, list[str], str]]:
    """(field, paths, host name) of every list of paths in a request."""
    named = [(f"servers[{i}].paths", s["paths"], s["hostname"]) for i, s in enumerate(request.get("servers", []))]
    if (restore := request.get("restore") or {}).get("paths"):
        named.append(("restore.paths", restore["paths"], restore["hostname"]))
    return named


def _not_the_client_folder(c: _Checker, request: Mapping[str, Any]) -> None:
    """The backup client's own folder on a server (its push key and the repository password) is never
    backed up or delivered: neither a path inside it nor one that holds it (`/var/lib`)."""
    client = posixpath.normpath(settings().client_dir)
    for field, paths, _host in _named_paths(request):
        for i, path in enumerate(paths):
            if path and (inside(path, client) or inside(client, path)):
                c.fail(f"{field}[{i}]", f"path นี้เป็นหรือครอบโฟลเดอร์ของโปรแกรมสำรองข้อมูล ({client}) ซึ่งเก็บกุญแจ"
                       "และรหัสผ่าน จึงสำรองหรือส่งมอบไม่ได้",
                       f"the backup client's folder {client} (push key, repository password) is never backed up "
                       "or delivered", path)


def validate_request(
    conf: Mapping[str, Any], inventory: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The normalised request, or `RequestInvalid` naming every bad field.

    With `inventory` (registered servers by host name), unknown servers are refused too.
    """
    c = _Checker()
    request: dict[str, Any] = {
        "memo_no": c.pattern(conf.get("memo_no"), MEMO_NO, "memo_no",
                             "เลขที่หนังสือไม่ถูกต้อง เช่น ทล 0601/1234", "memo number like ทล 0601/1234"),
        "memo_date": c.past_date(conf.get("memo_date"), "memo_date", "วันที่หนังสือ"),
        "subject": c.text(conf, "subject", "subject", "เรื่อง"),
        "agency": c.text(conf, "agency", "agency", "หน่วยงานผู้ร้องขอ", 150),
        "contact_name": c.text(conf, "contact_name", "contact_name", "ชื่อผู้ประสานงาน", 150),
        "contact_email": c.pattern(conf.get("contact_email"), EMAIL, "contact_email",
                                   "อีเมลไม่ถูกต้อง", "invalid e-mail address").lower(),
        "contact_phone": c.pattern(conf.get("contact_phone"), PHONE, "contact_phone",
                                   "หมายเลขโทรศัพท์ไม่ถูกต้อง", "invalid phone number"),
    }
    services = conf.get("services")
    if (not isinstance(services, list) or not services or len(set(services)) != len(services)
            or not set(services) <= set(SERVICES)):
        c.fail("services", "ต้องเลือกบริการ backup และ/หรือ restore อย่างละไม่เกินหนึ่งครั้ง",
               "non-empty subset of backup, restore", services)
        services = []
    request["services"] = [s for s in SERVICES if s in services]
    # The form's defaults fill in every key; fields of a service not asked for are ignored.
    request["servers"] = _servers(c, conf.get("servers")) if "backup" in services else []
    if "backup" in services:
        if not request["servers"]:
            c.fail("servers", "ต้องระบุเครื่องอย่างน้อย 1 เครื่องสำหรับบริการสำรองข้อมูล",
                   "at least one server for the backup service")
        request["retention"] = _retention(c, conf.get("retention"))
        request["schedule"] = c.pattern(conf.get("schedule"), SCHEDULE, "schedule",
                                        "ตารางเวลาต้องเป็นเช่น daily 01:00, weekly sun 02:30, monthly 1 03:00",
                                        "schedule like 'daily 01:00'")
    if "restore" in services:
        request["restore"] = _restore(c, conf.get("restore"))
    _not_the_client_folder(c, request)
    if inventory is not None:
        _registered(c, request, inventory)
    if c.errors:
        raise RequestInvalid(c.errors)
    return request
