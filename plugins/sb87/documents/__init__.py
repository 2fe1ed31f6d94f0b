"""Official documents: memos (บันทึกข้อความ) laid out as PDFs, and the request's folder of documents.

The step modules use the request's documents as `documents.<name>` (`sb87.documents.filing`), resolved
on first use rather than imported with the package: filing with fpdf2, pypdf and the memo templates
took 0.43 s of every parse of the request DAG, and only the tasks that write a memo need them
(bench/parse_time.py).
"""

from __future__ import annotations

from typing import Any

_FILING = ("request_documents", "server_details_pdf", "outgoing_memo_pdf", "write_manifest")


def __getattr__(name: str) -> Any:
    if name in _FILING:
        from sb87.documents import filing

        return getattr(filing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
