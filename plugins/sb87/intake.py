"""Step 1, receiving the request memo: check it, register it, acknowledge it.

The receipt number is taken in a step of its own, so an SMTP outage delays the acknowledgement
(it waits in the outbox) and never the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sb87 import steps
from sb87.airflow_api import set_run_note
from sb87.settings import organisation, registered_servers, settings


def validate(params: Mapping[str, Any], dag_run: Any) -> dict[str, Any]:
    """The normalised request every later step uses; a bad field fails here, naming each field."""
    from airflow.sdk.exceptions import AirflowFailException

    from sb87.deadlines import due_from_now
    from sb87.notes import request_summary
    from sb87.request import RequestInvalid, validate_request

    try:
        request = validate_request(dict(params), inventory=registered_servers())
    except RequestInvalid as err:
        set_run_note(dag_run.dag_id, dag_run.run_id, f"คำขอไม่ถูกต้อง ไม่ดำเนินการต่อ\n{err.errors}")
        raise AirflowFailException(str(err)) from err
    waiting = f"รอผู้อำนวยการศูนย์ฯ พิจารณา ({due_from_now(steps.DIRECTOR.limit_key)})"
    set_run_note(dag_run.dag_id, dag_run.run_id, f"{request_summary(request)}\n{waiting}")
    return request


def register_receipt(request: Mapping[str, Any], run_id: str) -> str:
    """The request's receipt number (เลขรับ) in the document register; a retry keeps the same number."""
    from sb87 import store

    entry = store.register_document(store.project_engine(), run_id, "in", request["subject"], datetime.now(UTC))
    return f"{entry['number']}/{entry['year_be']}"


def acknowledge(request: Mapping[str, Any], receipt: str, run_id: str) -> bool:
    """E-mails the requester the receipt number and the expected completion date, through the outbox."""
    from sb87.deadlines import limits_from_config
    from sb87.notices import send_notice_once
    from sb87.outcome import it_centre_copy, requester
    from sb87.workdays import default_calendar

    now = datetime.now(UTC)
    total = sum(limits_from_config().values())
    context = {"request": request, "org": organisation().raw["organisation"], "receipt": receipt, "received": now,
               "expected": default_calendar().add_working_days(now, total), "total_days": round(total)}
    return send_notice_once(run_id, "acknowledgement", context, to=requester(request), cc=it_centre_copy(),
                            conn_id=settings().smtp_conn_id)
