"""The request's documents as PDFs: the server-details memo (step 3) and the memo sent back (step 7).

Each request has a folder under `SB87_DOCUMENTS_DIR` named after its run; the run note names the
files. Wording lives in `include/templates/memo/`, layout in `sb87.documents.memo`.

Who writes what (brief §1 and §6):

* the server-details document is the coordinating **group's own memo to the IT Centre director**:
  its ส่วนราชการ is the group (`organisation.group_unit` in `config/sb87.json`), its ที่ is the
  group's letter code and its own outgoing number from the register (kind `group_out`), and it is
  signed by the group director who endorsed it, typed name and position from the roster;
* the result and rejection memos go from the IT Centre to the requesting unit, signed by the roster
  person `organisation.outgoing_memo_signer` (default: the first `it_director`).

Checksums are never cut short in a memo: `write_manifest()` puts them in `manifest-sha256.txt`
beside the memo (the `sha256sum -c` format) and the memo refers to it as an attachment.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sb87.documents import pdf_layout
from sb87.documents.memo import Memo, default_emblem, it_centre_memo, organisation_names, render_memo_body
from sb87.notices.messages import macros
from sb87.people import acting
from sb87.records import request_record, store
from sb87.settings import Person, organisation, settings

SERVER_DETAILS_SUBJECT = "เอกสารระบุรายละเอียดการรับฝากเครื่อง Server"
RESULT_SUBJECT = "แจ้งผลการดำเนินงานตามคำขอใช้บริการฝากเครื่อง Server"
REJECTION_SUBJECT = "แจ้งผลการพิจารณาคำขอใช้บริการฝากเครื่อง Server"
#: Register kind of the group's outgoing numbers (the IT Centre's own memos use "out").
GROUP_OUT_KIND = "group_out"
MANIFEST_NAME = "manifest-sha256.txt"

log = logging.getLogger(__name__)


def request_folder(run_id: str) -> Path:
    """`<documents_dir>/<run id made safe as one folder name>`, created on first use."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_id).lstrip(".") or "_"
    root = Path(settings().documents_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = root / name
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)  # memos name people and their data: never world-readable (issue 29 finding 9)
    return folder


def _private(path: Path) -> Path:
    """`path` created 0600 before a byte is written (a rewrite keeps the mode); a symlink is refused."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def request_documents(run_id: str) -> list[Path]:
    """The request's PDFs so far, in the order they were made."""
    return sorted(request_folder(run_id).glob("*.pdf"), key=lambda path: path.stat().st_mtime)


def roster_signatory(user_id: str, fallback_name: str = "", fallback_position: str = "",
                     capacity: str = "") -> dict[str, Any]:
    """`Memo` signature fields for a roster person: typed name, position, acting line.

    `capacity` ("รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ", as `sb87.people.acting` records it) makes
    the acting line and the post acted for two lines under the signer's own position.
    A person not in the roster (an id Airflow knows but the roster does not) signs with the name
    Airflow recorded and the fallback position, so a memo is never left unsigned.
    """
    if capacity:
        kind, _, post = capacity.partition(" ")
        try:
            person = organisation().person(user_id)
        except KeyError:
            return {"signatory_name": fallback_name or user_id, "position": fallback_position,
                    "position_lines": [kind, post]}
        return {"signatory_name": person.full_name, "position": person.position or fallback_position,
                "position_lines": [kind, post]}
    try:
        person: Person | None = organisation().person(user_id)
    except KeyError:
        person = None
    if person is None:
        return {"signatory_name": fallback_name or user_id, "position": fallback_position, "position_lines": []}
    lines = person.position_lines or [fallback_position]
    if not person.given_name:
        # The issue-13 memo: a job title typed in the parentheses over the same job title.
        log.warning("roster entry %s has no given_name/surname; its memo signature shows the display name",
                    user_id)
    return {"signatory_name": person.full_name, "position": lines[0], "position_lines": lines[1:]}


def _outgoing_signer_id() -> str:
    org = organisation()
    configured = org.raw["organisation"].get("outgoing_memo_signer")
    if configured:
        return str(configured)
    directors = org.with_role("it_director")
    return directors[0].id if directors else ""


def outgoing_signer(when: datetime) -> tuple[str, str]:
    """(roster id, capacity) of who signs the IT Centre's outgoing memos at `when`: the configured signer,
    or, while an order in force names an acting official for them, that official ("รักษาราชการแทน …")."""
    signer = _outgoing_signer_id()
    for entry in acting.acting_for_in(organisation().raw, signer, when):
        return entry.person, entry.capacity
    return signer, ""


def server_details_pdf(run_id: str, request: Mapping[str, Any], receipt: str, endorsed: Mapping[str, Any],
                       when: date | datetime, outgoing_no: str | None = None) -> Path:
    """The endorsed server-details document: the group's memo to the IT Centre director.

    `outgoing_no` is the group's register number; when None it is taken from the register
    (`store.register_document(..., "group_out", ...)`, the same number again on a retry).
    """
    org = organisation()
    raw = org.raw["organisation"]
    subject = f"{SERVER_DETAILS_SUBJECT} ({request['agency']})"
    if outgoing_no is None:

        entry = request_record.register_number(store.project_engine(), run_id, GROUP_OUT_KIND, subject,
                                        when if isinstance(when, datetime) else None)
        outgoing_no = str(entry["number"])
    recorded = roster_signatory(str(endorsed.get("recorded_by_id", "")), str(endorsed.get("recorded_by", "")))
    endorser = roster_signatory(str(endorsed.get("endorsed_by_id", "")), str(endorsed.get("endorsed_by", "")),
                                org["group_director_position"], str(endorsed.get("endorsed_by_capacity") or ""))
    body = render_memo_body("server_details.txt.j2", {
        "request": request, "receipt": receipt, **endorsed,
        "recorded_by_name": recorded["signatory_name"], "endorsed_by_name": endorser["signatory_name"],
    })
    unit = raw.get("group_unit") or f"{org['unit']} {org['department']}"
    memo = Memo(
        unit=unit,
        unit_phone=raw.get("group_unit_phone") or org["unit_phone"],
        number=f"{raw.get('group_letter_code') or org['letter_code']}/{outgoing_no}",
        date=when,
        subject=subject,
        addressee=org["director_position"],
        body=body,
        emblem_path=default_emblem(),
        author=unit,
        keep_together=(request["agency"], *organisation_names()),
        **endorser,
    )
    return _render(memo, request_folder(run_id) / "server-details.pdf")


def request_host(context: Mapping[str, Any]) -> str:
    return (context["request"].get("restore") or {}).get("hostname", "")


def manifest_lines(context: Mapping[str, Any]) -> list[str]:
    """`<sha256>  <name>` for every checksum of the result: each server's test-restored file and
    the delivered Restore File. The names are those the memo and the e-mail show."""
    lines = [f"{s['sample_sha256']}  {s['hostname']}:{s['sample_file']}"
             for s in context.get("servers") or [] if s.get("sample_sha256")]
    restored = context.get("restored")
    if restored and restored.get("sha256"):
        lines.append(f"{restored['sha256']}  {restored['archive']}")
    if restored and restored.get("manifest_sha256"):
        lines.append(f"{restored['manifest_sha256']}  {request_host(context)}:{restored['manifest']}")
    return lines


def write_manifest(run_id: str, context: Mapping[str, Any]) -> Path | None:
    """Write the result's SHA-256 list next to the memo and return its path (None: no checksum).

    The caller attaches it to the result e-mail beside the memo PDF. Rewriting gives the same bytes,
    so a retried task attaches the same file.
    """
    lines = manifest_lines(context)
    if not lines:
        return None
    path = _private(request_folder(run_id) / MANIFEST_NAME)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def memo_sub_units(codes: list[str]) -> list[str]:
    """The sub-units' names for a memo to another unit, which does not know the IT Centre's internal
    codes: only those the organisation file names (`sub_units[].name` other than the code)."""
    org = organisation()
    names = [org.sub_unit_name(code) for code in codes]
    return [name for code, name in zip(codes, names, strict=True) if name and name != code]


def outgoing_memo_pdf(run_id: str, kind: str, outgoing_no: str, when: date | datetime,
                      context: Mapping[str, Any]) -> Path:
    """The result (`result`) or rejection (`rejection`) memo to the requesting unit, from the IT Centre.

    A result with checksums also gets `manifest-sha256.txt` beside it (see `write_manifest`).
    """
    org = organisation()

    request = context["request"]
    subject = RESULT_SUBJECT if kind == "result" else REJECTION_SUBJECT
    manifest = write_manifest(run_id, context) if kind == "result" else None
    memo = it_centre_memo(
        register_no=outgoing_no,
        date=when,
        subject=subject,
        addressee=f"ผู้อำนวยการ{request['agency']}",
        body=render_memo_body(f"{kind}.txt.j2", {
            **context, "macros": macros(), "manifest_name": manifest.name if manifest else None,
            "memo_sub_units": memo_sub_units(list(context["decision"].get("sub_units") or []))}),
        signatory_name="",
        position="",
        keep_together=(request["agency"],),
    )
    # A memo dated a day (not an instant) is signed by whoever is in office as it is made.
    signed_at = when if isinstance(when, datetime) and when.tzinfo else datetime.now(UTC)
    signer, capacity = outgoing_signer(signed_at)
    signature = roster_signatory(signer, org["director_signature_name"], org["director_position"], capacity)
    memo.signatory_name = signature["signatory_name"]
    memo.position = signature["position"]
    memo.position_lines = signature["position_lines"]
    return _render(memo, request_folder(run_id) / f"{kind}-memo.pdf")


def _render(memo: Memo, path: Path) -> Path:
    return pdf_layout.render_memo_pdf(memo, _private(path))
