"""No notice is ever lost, and none reaches a recipient twice: faults injected for real.

Real servers only: an aiosmtpd SMTP server on loopback (free port), the machine's PostgreSQL
(`machine_postgres`) and a SQLite file. Senders that must die are child Python processes killed
with SIGKILL at the exact point under test.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from sb87.notices import outbox
from sb87.records import store
from sb87.settings import organisation
from stack.server_databases import scratch_database

ROOT = Path(__file__).resolve().parents[1]
SENDER = "ศูนย์เทคโนโลยีสารสนเทศ <itc-noreply@doh.example.go.th>"
IT_CENTRE = organisation()["it_centre_email"]
TO = [("สมหญิง ตั้งใจ", "somying@doh.example.go.th")]
CC = [("ฝ่ายบริหารงานทั่วไป", "saraban@doh.example.go.th")]
CONTEXT = {
    "request": {"agency": "แขวงทางหลวงสกลนครที่ 1", "memo_no": "ทล 0601/1234", "subject": "ขอใช้บริการสำรองข้อมูล"},
    "step": "ขั้นตอนที่ 5 สร้าง Policy สำรองข้อมูล", "error": "SSH หมดเวลา (timeout)", "link": "http://127.0.0.1:8080/x",
    "run_id": "manual__x", "org": {"unit": "ศูนย์เทคโนโลยีสารสนเทศ", "department": "กรมทางหลวง"},
}
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
AFTER_LEASE = NOW + outbox.LEASE + timedelta(seconds=1)


# --- real servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """aiosmtpd handler: keeps (envelope recipients, raw bytes) of every accepted message.

    `refuse(address)` may return an SMTP reply ("550 …") to refuse a recipient; `on_data(envelope)`
    runs before a message is accepted (a test's fault injection point).
    """

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: Callable[[str], str | None] = lambda _address: None
        self.on_data: Callable[[Any], None] | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        reply = self.refuse(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_data:
            self.on_data(envelope)
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        return [message_from_bytes(raw, policy=policy.default)["Message-ID"] for _, raw in self.messages]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = Recorder()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def sender(self) -> outbox.ClientSender:
        return outbox.ClientSender(lambda: smtplib.SMTP("127.0.0.1", self.port, timeout=10))


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(machine_postgres: str) -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL: a sweep sees this test's notices only."""
    with scratch_database("sb87_outbox") as url:
        try:
            yield url
        finally:
            store.engine(url).dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sb87.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def eng(db_url: str) -> Engine:
    return store.engine(db_url)


@pytest.fixture
def run_id() -> str:
    return f"manual__{uuid.uuid4().hex[:12]}"  # the PostgreSQL database is shared by the session


def _post(eng: Engine, run_id: str, send: outbox.Send | None, key: str = "acknowledgement", **kw: Any) -> bool:
    kw.setdefault("to", TO)
    kw.setdefault("cc", CC)
    return outbox.post(eng, run_id, key, "failure", {**CONTEXT, "run_id": run_id}, sender=SENDER, send=send,
                       now=NOW, **kw)


def _row(eng: Engine, run_id: str, key: str = "acknowledgement") -> dict[str, Any]:
    row = store.notice(eng, run_id=run_id, key=key)
    assert row is not None
    return row


def _wait(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


CHILD = """
import json, smtplib, sys
from datetime import datetime
from sb87.notices import outbox
from sb87.records import store
url, port, run_id, context, sender, now = sys.argv[1:7]
eng = store.engine(url)
send = outbox.ClientSender(lambda: smtplib.SMTP("127.0.0.1", int(port), timeout=120))
outbox.post(eng, run_id, "acknowledgement", "failure", json.loads(context), to=[("สมหญิง", "somying@doh.example.go.th")],
            sender=sender, send=send, now=datetime.fromisoformat(now))
print("done", flush=True)
"""


def _child(url: str, port: int, run_id: str, script: str = CHILD) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, url, str(port), run_id,
                             json.dumps({**CONTEXT, "run_id": run_id}), SENDER, NOW.isoformat()],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# --- the faults -------------------------------------------------------------------------------

def test_smtp_down_longer_than_every_retry_keeps_the_notice_and_one_sweep_sends_it_once(
        db_url: str, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The production path (send_notice_once → Airflow's SmtpHook, connections from the environment):
    the task's three tries and three sweeps find nothing listening; none raises; the notice waits;
    once the server is up one sweep delivers it, and later sweeps send nothing more."""
    from sb87.notices.outbox import send_notice_once

    port = free_port()  # nothing listens here yet
    monkeypatch.setenv("AIRFLOW_CONN_SB87_OUTBOX_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": SENDER, "timeout": 5, "retry_limit": 1}}))
    if db_url.startswith("sqlite"):
        conn = {"conn_type": "sqlite", "host": db_url.removeprefix("sqlite:///")}
    else:
        conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres",
                "schema": db_url.rsplit("/", 1)[1]}
    monkeypatch.setenv("AIRFLOW_CONN_SB87_DB", json.dumps(conn))
    eng = store.project_engine()

    tries = [send_notice_once(run_id, "failure", {**CONTEXT, "run_id": run_id}, to=TO, cc=CC,
                              conn_id="sb87_outbox_smtp") for _ in range(3)]
    assert tries == [True, False, False]  # queued by the first try only, and no try raised
    for minutes in (2, 10, 30):
        [result] = outbox.sweep(eng, datetime.now(UTC) + timedelta(minutes=minutes),
                                outbox.smtp_sender("sb87_outbox_smtp"))
        assert result["outcome"] == "failed"
    row = _row(eng, run_id, "failure")
    assert row["state"] == "queued" and row["attempts"] == 4
    assert "Connection refused" in row["last_error"] or "ConnectionRefused" in row["last_error"]

    server = SmtpServer(port).start()
    try:
        later = datetime.now(UTC) + timedelta(hours=2)
        with outbox.smtp_sender("sb87_outbox_smtp") as send:
            assert [r["outcome"] for r in outbox.sweep(eng, later, send)] == ["sent"]
            assert outbox.sweep(eng, later + timedelta(hours=1), send) == []
        assert send_notice_once(run_id, "failure", {**CONTEXT, "run_id": run_id}, to=TO, cc=CC,
                                conn_id="sb87_outbox_smtp") is False
        assert server.handler.message_ids() == [row["message_id"]]
        rcpts, raw = server.handler.messages[0]
        assert sorted(rcpts) == sorted(e for _, e in TO + CC)
        assert raw == bytes(store.notice(eng, run_id=run_id, key="failure")["message"])  # byte-identical
        # Decoded as RFC 2047 says (mail clients do): the space between the two encoded words of the
        # folded From line is not part of the name. (Python's new address parser keeps it.)
        legacy = message_from_bytes(raw)
        assert str(make_header(decode_header(legacy["From"]))) == SENDER
        assert str(make_header(decode_header(legacy["To"]))).startswith("สมหญิง ตั้งใจ <somying@")
        assert _row(eng, run_id, "failure")["state"] == "sent"
    finally:
        server.stop()


def test_sender_killed_between_claim_and_send_is_sent_once_after_its_lease(
        db_url: str, eng: Engine, run_id: str, smtp: SmtpServer) -> None:
    """A child process queues the notice, claims it and blocks on an SMTP server that never greets;
    kill -9. The lease keeps the sweeper off until it expires; then one sweep sends it once."""
    with socket.socket() as stall:
        stall.bind(("127.0.0.1", 0))
        stall.listen(5)
        stall.settimeout(30)
        child = _child(db_url, stall.getsockname()[1], run_id)
        try:
            conn, _ = stall.accept()  # the child is connected and waiting for a greeting that never comes
            row = _wait(lambda: (r := store.notice(eng, run_id=run_id, key="acknowledgement")) and r["claimed_by"]
                        and r, what="the child's claim")
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            conn.close()
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == -signal.SIGKILL
    assert row["state"] == "queued" and row["attempts"] == 1

    with smtp.sender() as send:
        assert outbox.sweep(eng, NOW + timedelta(minutes=5), send) == []  # the dead sender's lease holds
        assert [r["outcome"] for r in outbox.sweep(eng, AFTER_LEASE, send)] == ["sent"]
        assert outbox.sweep(eng, AFTER_LEASE + timedelta(hours=3), send) == []
    assert smtp.handler.message_ids() == [row["message_id"]]
    after = _row(eng, run_id)
    assert after["state"] == "sent" and after["attempts"] == 2


def test_sender_killed_between_send_and_mark_resends_only_the_same_message_id(
        pg_url: str, run_id: str, smtp: SmtpServer) -> None:
    """The server accepts the message, the test holds the outbox row's lock so the sender's mark
    blocks, kill -9. The sweep after the lease resends: the recipient has two copies, byte-identical,
    same Message-ID — the one duplicate the design allows — and no third."""
    import psycopg2

    app = f"sb87-outbox-child-{uuid.uuid4().hex[:8]}"
    child_url = f"{pg_url}?application_name={app}"
    dsn = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    locker = psycopg2.connect(dsn)
    locked = threading.Event()

    def lock_row(envelope: Any) -> None:
        if locked.is_set():
            return
        message_id = message_from_bytes(envelope.original_content, policy=policy.default)["Message-ID"]
        locker.cursor().execute("SELECT id FROM sb87_outbox WHERE message_id = %s FOR UPDATE", (message_id,))
        locked.set()

    smtp.handler.on_data = lock_row
    monitor = psycopg2.connect(dsn)
    monitor.autocommit = True

    def child_waits_for_lock() -> bool:
        with monitor.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = %s", (app,))
            return any(r[0] == "Lock" for r in cur.fetchall())

    def child_backend_gone() -> bool:
        with monitor.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))
            return cur.fetchone()[0] == 0

    child = _child(child_url, smtp.port, run_id)
    try:
        _wait(locked.is_set, what="the message at the server")
        _wait(child_waits_for_lock, what="the child's mark to block on the row lock")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        locker.rollback()
        locker.close()
    _wait(child_backend_gone, what="the dead sender's database session to end")
    monitor.close()
    assert child.returncode == -signal.SIGKILL

    eng = store.engine(pg_url)
    row = _row(eng, run_id)
    assert row["state"] == "queued"  # the mark never committed: the outbox does not know it was accepted
    assert len(smtp.handler.messages) == 1
    with smtp.sender() as send:
        assert outbox.sweep(eng, NOW + timedelta(minutes=5), send) == []
        assert [r["outcome"] for r in outbox.sweep(eng, AFTER_LEASE, send)] == ["sent"]
        assert outbox.sweep(eng, AFTER_LEASE + timedelta(hours=3), send) == []
    assert smtp.handler.message_ids() == [row["message_id"]] * 2
    first, second = (raw for _, raw in smtp.handler.messages)
    assert first == second == bytes(row["message"])


def test_database_locked_after_the_server_accepted_raises_and_the_sweep_resends_the_same_message_id(
        tmp_path: Path, run_id: str, smtp: SmtpServer) -> None:
    """SQLite: the test takes the database's write lock when the message reaches the server, so the
    sender's mark fails ("database is locked") after its busy timeout. The sender fails loudly (a
    database failure raises); the notice is kept and resent after the lease, same Message-ID."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'sb87.db'}"
    store.engine(url)  # tables
    locker = sqlite3.connect(tmp_path / "sb87.db", isolation_level=None, check_same_thread=False)
    locked = threading.Event()

    def lock_database(_envelope: Any) -> None:
        if not locked.is_set():
            locker.execute("BEGIN IMMEDIATE")
            locked.set()

    smtp.handler.on_data = lock_database
    child = _child(f"{url}?timeout=1", smtp.port, run_id)  # a 1 s busy timeout instead of 5
    try:
        _, err = child.communicate(timeout=60)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert child.returncode != 0 and "database is locked" in err

    eng = store.engine(url)
    row = _row(eng, run_id)
    assert row["state"] == "queued" and len(smtp.handler.messages) == 1
    with smtp.sender() as send:
        assert outbox.sweep(eng, NOW + timedelta(minutes=5), send) == []
        assert [r["outcome"] for r in outbox.sweep(eng, AFTER_LEASE, send)] == ["sent"]
        assert outbox.sweep(eng, AFTER_LEASE + timedelta(hours=3), send) == []
    assert smtp.handler.message_ids() == [row["message_id"]] * 2


def test_refused_recipient_is_recorded_others_get_it_and_the_it_centre_is_told_once(
        eng: Engine, run_id: str, smtp: SmtpServer) -> None:
    smtp.handler.refuse = lambda a: "550 5.1.1 <gone@doh.example.go.th>: no such user" if a.startswith("gone") else None
    to = [*TO, ("ผู้รับที่ไม่มีตัวตน", "gone@doh.example.go.th")]
    with smtp.sender() as send:
        assert _post(eng, run_id, send, to=to) is True
        assert _post(eng, run_id, send, to=to) is False
        assert outbox.sweep(eng, AFTER_LEASE + timedelta(days=1), send) == []

    row = _row(eng, run_id)
    assert row["state"] == "sent"
    assert json.loads(row["delivered"]) == ["somying@doh.example.go.th", "saraban@doh.example.go.th"]
    refused = json.loads(row["refused"])
    assert list(refused) == ["gone@doh.example.go.th"] and refused["gone@doh.example.go.th"][0] == 550
    [(notice_rcpts, _), (alert_rcpts, alert_raw)] = smtp.handler.messages
    assert sorted(notice_rcpts) == ["saraban@doh.example.go.th", "somying@doh.example.go.th"]
    assert alert_rcpts == [IT_CENTRE]
    alert = message_from_bytes(alert_raw, policy=policy.default)
    assert "ส่งอีเมลไม่ถึงผู้รับ 1 ราย" in alert["Subject"]
    text = alert.get_body(("plain",)).get_content()
    assert "gone@doh.example.go.th: 550" in text and row["message_id"] in text
    assert _row(eng, run_id, outbox.refusal_key("acknowledgement"))["state"] == "sent"


def test_every_recipient_refused_ends_refused_with_one_alert(eng: Engine, run_id: str, smtp: SmtpServer) -> None:
    smtp.handler.refuse = lambda a: "550 5.1.1 no such user" if a != IT_CENTRE else None
    with smtp.sender() as send:
        _post(eng, run_id, send)
        assert outbox.sweep(eng, AFTER_LEASE + timedelta(days=1), send) == []
    row = _row(eng, run_id)
    assert row["state"] == "refused" and json.loads(row["delivered"]) == []
    assert sorted(json.loads(row["refused"])) == ["saraban@doh.example.go.th", "somying@doh.example.go.th"]
    assert [rcpts for rcpts, _ in smtp.handler.messages] == [[IT_CENTRE]]


def test_temporarily_refused_recipient_gets_the_same_message_later_and_the_others_not_twice(
        eng: Engine, run_id: str, smtp: SmtpServer) -> None:
    replies = iter(["450 4.2.1 mailbox busy, try later"])
    smtp.handler.refuse = lambda a: next(replies, None) if a.startswith("saraban@") else None
    with smtp.sender() as send:
        _post(eng, run_id, send)
        row = _row(eng, run_id)
        assert row["state"] == "queued" and json.loads(row["pending"]) == ["saraban@doh.example.go.th"]
        assert "450" in row["last_error"]
        assert [r["outcome"] for r in outbox.sweep(eng, NOW + timedelta(minutes=2), send)] == ["sent"]
    assert [rcpts for rcpts, _ in smtp.handler.messages] == [["somying@doh.example.go.th"],
                                                             ["saraban@doh.example.go.th"]]
    assert smtp.handler.message_ids() == [row["message_id"]] * 2
    assert _row(eng, run_id)["state"] == "sent"


SWEEPER = """
import json, smtplib, sys
from datetime import datetime
from sb87.notices import outbox
from sb87.records import store
url, port, now = sys.argv[1], sys.argv[2], sys.argv[6]
eng = store.engine(url)
print("ready", flush=True)
sys.stdin.readline()
with outbox.ClientSender(lambda: smtplib.SMTP("127.0.0.1", int(port), timeout=30)) as send:
    print(json.dumps(outbox.sweep(eng, datetime.fromisoformat(now), send)), flush=True)
"""


def test_concurrent_senders_send_each_notice_once(db_url: str, eng: Engine, run_id: str, smtp: SmtpServer) -> None:
    """Three sweeper processes and three threads released together over five queued notices."""
    keys = [f"notice {i}" for i in range(5)]
    for key in keys:
        assert outbox.enqueue(eng, run_id, key, "failure", {**CONTEXT, "run_id": run_id}, TO, sender=SENDER, now=NOW)
    procs = [_child(db_url, smtp.port, run_id, SWEEPER) for _ in range(3)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go = threading.Event()
    outcomes: list[str] = []

    def sweeper() -> None:
        go.wait()
        with smtp.sender() as send:
            outcomes.extend(r["outcome"] for r in outbox.sweep(eng, NOW, send))

    threads = [threading.Thread(target=sweeper) for _ in range(3)]
    for t in threads:
        t.start()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    go.set()
    for t in threads:
        t.join(60)
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outcomes.extend(r["outcome"] for r in json.loads(out))
    ids = [_row(eng, run_id, key)["message_id"] for key in keys]
    assert sorted(smtp.handler.message_ids()) == sorted(ids)  # each once
    assert outcomes.count("sent") == 5 and set(outcomes) <= {"sent", "busy"}
    assert outcomes.count("busy") >= 1  # they did contend (measured: all six listed all five as due)
    assert all(_row(eng, run_id, key)["state"] == "sent" for key in keys)


# --- the contract -----------------------------------------------------------------------------

def test_same_run_and_key_give_one_row_and_one_stable_message_id(eng: Engine, run_id: str) -> None:
    assert outbox.enqueue(eng, run_id, "result", "failure", CONTEXT, TO, sender=SENDER, now=NOW) is True
    assert outbox.enqueue(eng, run_id, "result", "failure", CONTEXT, TO, sender=SENDER, now=NOW) is False
    assert outbox.enqueue(eng, run_id, "result again", "failure", CONTEXT, TO, sender=SENDER, now=NOW) is True
    first, second = _row(eng, run_id, "result"), _row(eng, run_id, "result again")
    assert first["message_id"] == outbox.message_id_for(run_id, "result", SENDER)
    assert first["message_id"].endswith("@doh.example.go.th>") and first["message_id"] != second["message_id"]
    parsed = message_from_bytes(bytes(first["message"]), policy=policy.default)
    assert parsed["Message-ID"] == first["message_id"]
    assert bytes(first["message"]).isascii()  # sendable as stored to any server, 8BITMIME or not


def test_attachment_is_stored_at_enqueue_time(eng: Engine, run_id: str, tmp_path: Path, smtp: SmtpServer) -> None:
    pdf = tmp_path / "memo.pdf"
    pdf.write_bytes(b"%PDF-1.7 first version")
    outbox.enqueue(eng, run_id, "result", "failure", CONTEXT, TO, attachments=[pdf], sender=SENDER, now=NOW)
    pdf.write_bytes(b"%PDF-1.7 rewritten later")  # a later task rewrites or deletes the file
    with smtp.sender() as send:
        assert [r["outcome"] for r in outbox.sweep(eng, NOW, send)] == ["sent"]
    [(_, raw)] = smtp.handler.messages
    [part] = message_from_bytes(raw, policy=policy.default).iter_attachments()
    assert part.get_filename() == "memo.pdf" and part.get_content() == b"%PDF-1.7 first version"


def test_database_failure_raises(run_id: str, smtp: SmtpServer) -> None:
    dead = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/sb87")
    with pytest.raises(OperationalError), smtp.sender() as send:
        _post(dead, run_id, send)
    assert smtp.handler.messages == []


def test_outbox_dag_runs_every_minute_one_at_a_time() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "sb87_notice_outbox.py"))
    assert bag.import_errors == {}
    dag = bag.dags["sb87_notice_outbox"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.timetable.delta == timedelta(minutes=1)
    [t] = dag.tasks
    assert t.task_id == "send_queued_notices" and "ส่งอีเมล" in t.task_display_name and t.doc_md
