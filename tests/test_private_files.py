"""Issue 29 finding 9: memos and mails under the stack home hold personal data (names, e-mail
addresses, servers, reasons) and were 0644. They are now 0600 in 0700 folders."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from sb87.documents import filing
from sb87.documents.memo import Memo
from stack import smtp_sink


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_memos_and_their_checksum_list_are_written_0600_in_a_0700_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.delenv("SB87_MEMO_EMBLEM", raising=False)
    manifest = filing.write_manifest("manual__private", {"servers": [], "restored": {
        "archive": "SB87-x.tar.zst", "sha256": "0" * 64}})
    memo = Memo(unit="ศูนย์เทคโนโลยีสารสนเทศ", number="ทล 0601/1", date="2026-11-24", subject="ทดสอบ",
                addressee="ผู้อำนวยการ", body=["นางสาวสมหญิง ตั้งใจ somying.t@doh.example.go.th"],
                signatory_name="สมศักดิ์ ตัวอย่าง", position="ผู้อำนวยการ")
    pdf = filing._render(memo, filing.request_folder("manual__private") / "result-memo.pdf")
    again = filing._render(memo, pdf)  # a retried task rewrites the same file
    assert again == pdf and pdf.read_bytes().startswith(b"%PDF")
    assert manifest is not None and manifest.parent == pdf.parent
    assert (_mode(manifest), _mode(pdf), _mode(pdf.parent), _mode(tmp_path / "documents")) == (
        0o600, 0o600, 0o700, 0o700)


def test_a_request_folder_made_0755_by_an_older_version_is_closed_on_next_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    old = tmp_path / "documents" / "manual__old"
    old.mkdir(parents=True, mode=0o755)
    old.chmod(0o755)
    assert _mode(filing.request_folder("manual__old")) == 0o700


def test_a_symlink_planted_where_a_memo_goes_is_not_written_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    (filing.request_folder("manual__link") / filing.MANIFEST_NAME).symlink_to(outside)
    with pytest.raises(OSError):
        filing.write_manifest("manual__link", {"servers": [], "restored": {"archive": "a", "sha256": "0" * 64}})
    assert outside.read_text() == "untouched"


def test_the_smtp_sink_keeps_every_message_0600_in_a_0700_maildir(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mail_dir = tmp_path / "mail"
    sink = subprocess.Popen(smtp_sink.argv(port, mail_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert sink.poll() is None, sink.stderr.read() if sink.stderr else ""
            time.sleep(0.1)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "it@doh.example", "somying.t@doh.example", "ผลการดำเนินงาน"
        message.set_content("เรียน คุณสมหญิง")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
        [kept] = list((mail_dir / "new").iterdir())
        assert [m["Subject"] for m in smtp_sink.read_mail(mail_dir)] == ["ผลการดำเนินงาน"]
        assert _mode(kept) == 0o600
        assert {_mode(d) for d in (mail_dir, mail_dir / "new", mail_dir / "cur", mail_dir / "tmp")} == {0o700}
    finally:
        sink.terminate()
        sink.wait(10)
