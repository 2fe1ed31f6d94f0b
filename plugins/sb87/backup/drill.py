"""Recoverability drills: every month, each protected server's data is proven restorable.

For each active policy (`sb87.backup.freshness.policies`):

1. `drill_plan` on the backup host: the server's newest snapshot and its files (their sizes add up to
   the restore size);
2. a random sample of those files, bounded (`SB87_DRILL_MAX_FILES`, `SB87_DRILL_MAX_MIB`), with at least
   one file from each of the server's data roots (`choose_sample`, pure);
3. `drill_restore` on the deposited server, through its own push path: the sample restored into a new
   scratch folder (never over live data) with `restic restore --verify`; each restored file against the
   live one (same size and mtime → the SHA-256 must match, otherwise "changed since the snapshot");
   the scratch folder removed whatever happens;
4. `drill_check` on the backup host: `restic check --read-data-subset=<month>/12`, so every pack of the
   repository is read once a year;
5. the result recorded (`sb87_drills`) and the IT Centre alerted once per incident and once on its
   recovery (`sb87_drill_incidents`, the freshness watch's pattern, `send_notice_once`).

A server or backup host that cannot be reached makes the drill "not_run": never "passed".
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from sb87.backup.backends import _trim_nanoseconds, parse_results, render_script
from sb87.records.store import metadata
from sb87.timekeeping.workdays import BANGKOK, WorkingCalendar

PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"
BAD = (FAILED, NOT_RUN)
FILE_MARK = "SB87_FILE "
#: Verdicts of one sampled file; the first three fail the drill.
MISMATCH, MISSING, SIZE, VERIFIED, CHANGED = "mismatch", "missing", "size", "verified", "changed"
FAILING_VERDICTS = (MISMATCH, MISSING, SIZE)
MONTHS = 12  # the check slice: one twelfth of the packs a month, the whole repository once a year
#: An SSH exec request travels in one packet (OpenSSH takes up to 256 KiB); the sample's paths go in twice.
MAX_COMMAND_BYTES = 200_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

drills = Table(
    "sb87_drills",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("server_id", String(64), nullable=False),
    Column("hostname", String(253), nullable=False),
    Column("state", String(20), nullable=False),  # passed | failed | not_run
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_id", String(64)),
    Column("snapshot_at", DateTime(timezone=True)),
    Column("files", Integer, nullable=False, default=0),  # sampled and restored
    Column("bytes", BigInteger, nullable=False, default=0),  # restored
    Column("verified", Integer, nullable=False, default=0),  # SHA-256 equal to the unchanged live file
    Column("changed", Integer, nullable=False, default=0),  # live file changed since the snapshot
    Column("mismatches", Integer, nullable=False, default=0),  # mismatch, missing or wrong size
    Column("duration_seconds", Float, nullable=False, default=0.0),  # the whole drill
    Column("restore_seconds", Float),
    Column("throughput_bytes_per_second", Float),  # restored bytes / restore seconds
    Column("restore_size_bytes", BigInteger),  # the snapshot's files added up: what a full restore writes
    Column("estimated_full_restore_seconds", Float),  # restore size / throughput
    Column("check_subset", String(20)),
    Column("check_ok", Boolean),
    Column("detail", String(2000), nullable=False, default=""),
)

drill_incidents = Table(
    "sb87_drill_incidents",
    metadata,
    Column("incident_key", String(250), nullable=False),
    Column("server_id", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("recovered_at", DateTime(timezone=True)),
    UniqueConstraint("incident_key", name="sb87_drill_incidents_key"),
)


# ----------------------------------------------------------------------------- pure logic


@dataclass(frozen=True)
class SnapshotFile:
    path: str
    size: int
    mtime: str = ""


def files_of_listing(output: str) -> list[SnapshotFile]:
    """The `SB87_FILE` lines of `drill_plan` (restic's JSON nodes), as files."""
    out = []
    for line in output.splitlines():
        if line.startswith(FILE_MARK):
            node = json.loads(line[len(FILE_MARK):])
            out.append(SnapshotFile(node["path"], int(node.get("size", 0)), node.get("mtime", "")))
    return out


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


@dataclass(frozen=True)
class Sample:
    files: tuple[SnapshotFile, ...]
    uncovered_roots: tuple[str, ...] = ()  # data roots the sample could not include a file from

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


def choose_sample(files: Sequence[SnapshotFile], data_roots: Sequence[str], max_files: int, max_bytes: int,
                  rng: random.Random) -> Sample:
    """A random sample of at most `max_files` files and `max_bytes` bytes, with one file of each data root
    first (one that fits the root's share of the byte budget, else the root's smallest if it fits).
    Names with control characters are left out: a script's result lines are one line per file."""
    eligible = [f for f in files if not _CONTROL.search(f.path)]
    chosen: list[SnapshotFile] = []
    taken: set[str] = set()
    used = 0
    uncovered = []
    roots = list(dict.fromkeys(data_roots))
    for n, root in enumerate(roots):
        candidates = [f for f in eligible if _inside(f.path, root) and f.path not in taken]
        share = (max_bytes - used) // (len(roots) - n)
        fits = [f for f in candidates if f.size <= share]
        if not fits and candidates:
            smallest = min(candidates, key=lambda f: f.size)
            fits = [smallest] if used + smallest.size <= max_bytes else []
        if not fits or len(chosen) >= max_files:
            uncovered.append(root)
            continue
        pick = rng.choice(fits)
        chosen.append(pick)
        taken.add(pick.path)
        used += pick.size
    order = list(range(len(eligible)))
    rng.shuffle(order)
    for i in order:
        if len(chosen) >= max_files or used >= max_bytes:
            break
        f = eligible[i]
        if f.path not in taken and used + f.size <= max_bytes:
            chosen.append(f)
            taken.add(f.path)
            used += f.size
    return Sample(tuple(chosen), tuple(uncovered))


def check_subset(day: date) -> str:
    """The month's slice of `restic check --read-data-subset`: n/12, so all data is read once a year."""
    return f"{day.month}/{MONTHS}"


def is_drill_day(day: date, calendar: WorkingCalendar) -> bool:
    """The scheduled drill runs on the first working day of the month (government offices' calendar)."""
    first = day.replace(day=1)
    while not calendar.is_working_day(first):
        first += timedelta(days=1)
    return day == first


@dataclass
class DrillResult:
    server_id: str
    hostname: str
    state: str = NOT_RUN
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    snapshot_id: str | None = None
    snapshot_at: datetime | None = None
    files: int = 0
    bytes: int = 0
    verified: int = 0
    changed: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"path", "verdict"}
    duration_seconds: float = 0.0
    restore_seconds: float | None = None
    restore_size_bytes: int | None = None
    check_subset: str | None = None
    check_ok: bool | None = None
    scratch: str = ""

    @property
    def throughput(self) -> float | None:
        """Restored bytes per second of `restic restore` on the server."""
        if not self.restore_seconds or not self.bytes:
            return None
        return self.bytes / self.restore_seconds

    @property
    def estimated_full_restore_seconds(self) -> float | None:
        """How long restoring the whole snapshot would take at this drill's throughput."""
        rate = self.throughput
        return None if rate is None or self.restore_size_bytes is None else self.restore_size_bytes / rate

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["throughput_bytes_per_second"] = self.throughput
        out["estimated_full_restore_seconds"] = self.estimated_full_restore_seconds
        out["snapshot_at"] = self.snapshot_at.isoformat() if self.snapshot_at else None
        return out


def judge(result: DrillResult, restore: Mapping[str, Any] | None, verdicts: Sequence[Mapping[str, Any]],
          check: Mapping[str, Any] | None) -> DrillResult:
    """Fill in the verdict from what the scripts reported. Any failing file, a restore error or a failed
    check slice fails the drill; a drill whose restore or check could not run is not passed."""
    if restore is not None:
        result.restore_seconds = max(float(restore["finished"]) - float(restore["started"]), 1e-6)
        result.bytes = int(restore.get("restored_bytes") or 0)
        result.scratch = restore.get("scratch", "")
        if int(restore.get("exit", 0)) != 0:
            result.reasons.append(f"restic restore ล้มเหลว (รหัส {restore['exit']}): {restore.get('error', '')}"[:600])
    result.files = len(verdicts)
    result.verified = sum(1 for v in verdicts if v["verdict"] == VERIFIED)
    result.changed = [v["path"] for v in verdicts if v["verdict"] == CHANGED]
    result.failures = [{"path": v["path"], "verdict": v["verdict"]} for v in verdicts
                       if v["verdict"] in FAILING_VERDICTS]
    words = {MISMATCH: "SHA-256 ไม่ตรงกับไฟล์จริงที่ไม่ได้เปลี่ยน", MISSING: "กู้คืนไม่ได้", SIZE: "ขนาดไม่ตรงกับ snapshot"}
    for f in result.failures[:10]:
        result.reasons.append(f"{f['path']}: {words[f['verdict']]}")
    if check is not None:
        result.check_ok = bool(check.get("ok"))
        if not result.check_ok:
            result.reasons.append(f"restic check --read-data-subset={check.get('subset')} พบความเสียหาย: "
                                  f"{check.get('errors', '')}"[:600])
    if result.reasons:
        result.state = FAILED
    elif restore is None or check is None:
        result.state = NOT_RUN
    else:
        result.state = PASSED
    return result


# ----------------------------------------------------------------------------- the drill over SSH

Runner = Callable[[str], str]


def _request(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {"servers": [{"id": policy["server_id"], "hostname": policy["hostname"], "paths": [], "address": ""}]}


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _reach(run: Runner, command: str, result: DrillResult, what: str) -> str | None:
    """stdout of `command`, or None with the reason noted (host unreachable, script stopped)."""
    try:
        return run(command)
    except Exception as exc:  # an unreachable host is an observation, not a crash
        result.notes.append(f"{what}: {_why(exc)}")
        return None


def _reported(output: str | None, action: str) -> dict[str, Any] | None:
    found = [r for r in parse_results(output) if r.get("action") == action]
    return found[-1] if found else None


def restore_command(policy: Mapping[str, Any], run_id: str, snapshot: str, sample: Sample,
                    endpoint: Mapping[str, Any]) -> tuple[str, Sample]:
    """The server's `drill_restore` script; a sample too long for one SSH request is cut to fit, from its
    end (its first files are the one per data root)."""
    files = list(sample.files)
    while True:
        command = render_script("drill_restore", _request(policy), run_id, server=policy["server_id"],
                                snapshot=snapshot, sample=[{"path": f.path, "size": f.size} for f in files],
                                **endpoint)
        if len(command.encode()) <= MAX_COMMAND_BYTES or len(files) <= 1:
            return command, Sample(tuple(files), sample.uncovered_roots)
        files = files[: max(1, len(files) * 3 // 4)]


def run_drill(policy: Mapping[str, Any], data_roots: Sequence[str], run_backup_host: Runner,
              run_on_server: Runner, *, run_id: str, today: date, max_files: int, max_bytes: int,
              endpoint: Mapping[str, Any] | None = None, rng: random.Random | None = None,
              subset: str | None = None) -> DrillResult:
    """One server's drill. `run_backup_host(command)` / `run_on_server(command)` return stdout or raise
    (a server that cannot be reached, a script that stopped): the drill is then "not_run" unless what
    did run already failed it."""
    rng = rng or random.Random()  # noqa: S311 - a sample, not a secret
    started = time.monotonic()
    result = DrillResult(policy["server_id"], policy["hostname"])
    request = _request(policy)
    restore: dict[str, Any] | None = None
    verdicts: list[dict[str, Any]] = []
    check: dict[str, Any] | None = None
    # Only the SSH calls are caught: a script that renders wrong is the pipeline's bug, not a "not run".
    listing = _reach(run_backup_host, render_script("drill_plan", request, run_id), result,
                     "ติดต่อเครื่องสำรองข้อมูลไม่ได้")
    plan = _reported(listing, "drill_plan")
    snap = plan.get("snapshot") if plan else None
    if plan and not snap:
        result.reasons.append("ไม่มี snapshot ให้ทดสอบกู้คืน")
    elif snap:
        result.snapshot_id = snap["id"]
        result.snapshot_at = datetime.fromisoformat(_trim_nanoseconds(snap["time"])).astimezone(UTC)
        files = files_of_listing(listing or "")
        result.restore_size_bytes = sum(f.size for f in files)
        sample = choose_sample(files, data_roots, max_files, max_bytes, rng)
        for root in sample.uncovered_roots:
            result.notes.append(f"ไม่มีไฟล์จาก {root} ในตัวอย่าง (ไม่มีใน snapshot หรือใหญ่เกินขอบเขต)")
        if not sample.files:
            result.reasons.append("snapshot ไม่มีไฟล์ที่เลือกเป็นตัวอย่างได้ภายในขอบเขต")
        else:
            command, sample = restore_command(policy, run_id, snap["id"], sample, endpoint or {})
            out = _reach(run_on_server, command, result, f"ติดต่อเครื่อง {policy['hostname']} ไม่ได้")
            restore = _reported(out, "drill_restore")
            verdicts = [r for r in parse_results(out) if r.get("action") == "drill_file"]
    result.check_subset = subset or check_subset(today)
    out = _reach(run_backup_host, render_script("drill_check", request, run_id, read_data_subset=result.check_subset),
                 result, "ตรวจคลังข้อมูลบนเครื่องสำรองข้อมูลไม่ได้")
    check = _reported(out, "drill_check")
    judge(result, restore, verdicts, check)
    result.duration_seconds = time.monotonic() - started
    return result


# ----------------------------------------------------------------------------- database and alerts


def record(eng: Engine, result: DrillResult, run_id: str, started_at: datetime, finished_at: datetime) -> None:
    with eng.begin() as db:
        db.execute(insert(drills).values(
            run_id=run_id, server_id=result.server_id, hostname=result.hostname, state=result.state,
            started_at=started_at, finished_at=finished_at, snapshot_id=result.snapshot_id,
            snapshot_at=result.snapshot_at, files=result.files, bytes=result.bytes, verified=result.verified,
            changed=len(result.changed), mismatches=len(result.failures), duration_seconds=result.duration_seconds,
            restore_seconds=result.restore_seconds, throughput_bytes_per_second=result.throughput,
            restore_size_bytes=result.restore_size_bytes,
            estimated_full_restore_seconds=result.estimated_full_restore_seconds,
            check_subset=result.check_subset, check_ok=result.check_ok,
            detail="; ".join(result.reasons + result.notes)[:2000]))


def drill_rows(eng: Engine, server_id: str | None = None) -> list[dict[str, Any]]:
    query = select(drills).order_by(drills.c.id)
    if server_id:
        query = query.where(drills.c.server_id == server_id)
    with eng.connect() as db:
        return [dict(r._mapping) for r in db.execute(query)]


def incident_rows(eng: Engine) -> list[dict[str, Any]]:
    with eng.connect() as db:
        return [dict(r._mapping) for r in db.execute(select(drill_incidents).order_by(drill_incidents.c.opened_at))]


@dataclass(frozen=True)
class DrillAlert:
    kind: str  # "incident" | "recovery"
    server_id: str
    incident_key: str


Send = Callable[[DrillAlert, Mapping[str, Any]], None]


def alert(eng: Engine, result: DrillResult, policy: Mapping[str, Any], now: datetime, send: Send) -> DrillAlert | None:
    """Open an incident (and alert once) when a drill fails or cannot run; close it (and say so once) when
    the server's next drill passes. The incident row is written before its notice, and the notice is
    `send_notice_once` keyed by the incident, so a retried task never alerts twice."""
    with eng.connect() as db:
        open_key = db.execute(select(drill_incidents.c.incident_key).where(
            drill_incidents.c.server_id == result.server_id, drill_incidents.c.recovered_at.is_(None))).scalar()
    if result.state in BAD and open_key is None:
        made = DrillAlert("incident", result.server_id, f"drill:{result.server_id}:{now.isoformat()}")
        with eng.begin() as db:
            db.execute(insert(drill_incidents).values(incident_key=made.incident_key, server_id=result.server_id,
                                                      state=result.state, opened_at=now))
    elif result.state == PASSED and open_key is not None:
        made = DrillAlert("recovery", result.server_id, open_key)
        with eng.begin() as db:
            db.execute(update(drill_incidents).where(drill_incidents.c.incident_key == open_key)
                       .values(recovered_at=now))
    else:
        return None
    send(made, {"kind": made.kind, "policy": dict(policy), "drill": result.summary(), "now": now})
    return made


def email_sender(conn_id: str, to: Sequence[tuple[str, str]]) -> Send:
    """Drill alerts as `drill` e-mails through the outbox, once per incident and kind."""
    from sb87.notices.outbox import send_notice_once
    from sb87.settings import organisation

    def send(made: DrillAlert, context: Mapping[str, Any]) -> None:
        send_notice_once(made.incident_key, "drill", {**context, "org": organisation().raw["organisation"]},
                         once_key=f"drill-{made.kind}", to=list(to), conn_id=conn_id)
    return send


def describe(result: DrillResult) -> str:
    """One line for the task log and its error: the server, the verdict and why."""
    head = f"{result.hostname} ({result.server_id}): {result.state}"
    facts = (f"snapshot {result.snapshot_id}, {result.files} ไฟล์ {result.bytes} ไบต์, ตรงกัน {result.verified}, "
             f"เปลี่ยนหลัง snapshot {len(result.changed)}, ผิดพลาด {len(result.failures)}")
    why = "; ".join(result.reasons + result.notes)
    return f"{head} — {facts}" + (f" — {why}" if why else "")


def drill_server(policy: Mapping[str, Any], run_id: str) -> DrillResult:
    """What the DAG's mapped task does for one policy row: the drill through the Airflow connections (the
    backup host's and the server's own, host keys pinned there), its record in the project's database,
    its alert or recovery notice. Raises AirflowFailException, naming the server and why, unless it passed."""
    from airflow.sdk.exceptions import AirflowFailException

    from sb87.backup.freshness import ssh_runner
    from sb87.records import store
    from sb87.settings import organisation, registered_servers, settings

    cfg = settings()
    started = datetime.now(UTC)
    entry = registered_servers().get(str(policy["hostname"]).lower(), {})
    result = run_drill(policy, entry.get("data_roots") or [], ssh_runner(cfg.backup_conn_id, cfg.ssh_cmd_timeout),
                       ssh_runner(policy["ssh_conn_id"], cfg.ssh_cmd_timeout), run_id=run_id,
                       today=started.astimezone(BANGKOK).date(), max_files=cfg.drill_max_files,
                       max_bytes=cfg.drill_max_mib * 2**20)
    eng = store.project_engine()
    record(eng, result, run_id, started, datetime.now(UTC))
    org = organisation()
    alert(eng, result, policy, datetime.now(UTC),
          email_sender(cfg.smtp_conn_id, [(org["unit"], org["it_centre_email"])]))
    if result.state != PASSED:
        raise AirflowFailException(describe(result))
    return result
