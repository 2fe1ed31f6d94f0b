"""The request's documents as PDFs: the server-details document (step 3) and the memo sent back (step 7).

Each request has a folder under `SB87_DOCUMENTS_DIR` named after its run; the run note names the
files. Wording lives in `include/templates/memo/`, layout in `sb87.memo`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sb87.memo import Memo, it_centre_memo, render_memo_body, render_memo_pdf
from sb87.settings import organisation, settings

SERVER_DETAILS_SUBJECT = "เอกสารระบุรายละเอียดการรับฝากเครื่อง Server"
RESULT_SUBJECT = "แจ้งผลการดำเนินงานตามคำขอใช้บริการฝากเครื่อง Server"
REJECTION_SUBJECT = "แจ้งผลการพิจารณาคำขอใช้บริการฝากเครื่อง Server"


def request_folder(run_id: str) -> Path:
    """`<documents_dir>/<run id made safe as one folder name>`, created on first use."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", run_id).lstrip(".") or "_"
    folder = Path(settings().documents_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def request_documents(run_id: str) -> list[Path]:
    """The request's PDFs so far, in the order they were made."""
    return sorted(request_folder(run_id).glob("*.pdf"), key=lambda path: path.stat().st_mtime)


def server_details_pdf(run_id: str, request: Mapping[str, Any], receipt: str, endorsed: Mapping[str, Any],
                       when: date | datetime) -> Path:
    """The endorsed server-details document, signed off by the group/division director who endorsed it."""
    org = organisation()
    body = render_memo_body("server_details.txt.j2", {"request": request, "receipt": receipt, **endorsed})
    memo = Memo(
        unit=f"{org['unit']} {org['department']}",
        unit_phone=org["unit_phone"],
        number=f"รับที่ {receipt}",
        date=when,
        subject=f"{SERVER_DETAILS_SUBJECT} ({request['agency']})",
        addressee=org["director_position"],
        body=body,
        signatory_name=endorsed["endorsed_by"],
        position=org["group_director_position"],
        author=org["unit"],
    )
    return render_memo_pdf(memo, request_folder(run_id) / "server-details.pdf")


def outgoing_memo_pdf(run_id: str, kind: str, outgoing_no: str, when: date | datetime,
                      context: Mapping[str, Any]) -> Path:
    """The result (`result`) or rejection (`rejection`) memo to the requesting unit, from the IT Centre."""
    org = organisation()
    from sb87.notices import macros

    request = context["request"]
    subject = RESULT_SUBJECT if kind == "result" else REJECTION_SUBJECT
    memo = it_centre_memo(
        register_no=outgoing_no,
        date=when,
        subject=subject,
        addressee=f"ผู้อำนวยการ{request['agency']}",
        body=render_memo_body(f"{kind}.txt.j2", {**context, "macros": macros()}),
        signatory_name=org["director_signature_name"],
        position=org["director_position"],
    )
    return render_memo_pdf(memo, request_folder(run_id) / f"{kind}-memo.pdf")
