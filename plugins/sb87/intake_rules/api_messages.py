"""Refusals a person can read: two ASGI middlewares for Airflow's api-server (registered by
`plugins/sb87_plugin.py` as `fastapi_root_middlewares`).

`TriggerRefusalMiddleware` — a conf that breaks a Param's JSON schema is refused by
`POST /api/v2/dags/<dag>/dagRuns` with HTTP 400 and jsonschema's text ("Invalid input for param
servers: 'x y' does not match '^(?=.{1,253}…'"). For this DAG the body becomes the field (with its
index, `servers[0].hostname`), its label and its rule in Thai and English from `sb87.intake_rules.field_rules`;
Airflow's own text stays beside it as `airflow_detail`:

    {"detail": "ช่อง servers[0].hostname (ชื่อเครื่อง (hostname)) ไม่ถูกต้อง: <rule> | Field …: <rule>",
     "field": "servers[0].hostname", "rule_field": "servers.hostname", "title": "ชื่อเครื่อง (hostname)",
     "rule_th": "…", "rule_en": "…", "value": "'x y'", "airflow_detail": "Invalid input for param servers: …"}

`DecisionReasonMiddleware` — Airflow's decision forms cannot make a field required for one option
only. `PATCH …/taskInstances/<task>/<map_index>/hitlDetails` choosing an option that needs a reason
(`sb87.people.forms.REASON_REQUIRED`: reject, send back) with the reason blank is refused with HTTP 400
before Airflow records the answer, so the person can type one and choose again. (The Airflow 3.3 UI
shows any failed answer as a toast "Response failed / Bad Request" without the body; the form's
own help text says when the reason is needed, and the decision stays open.)

Both are pure ASGI (no Starlette `BaseHTTPMiddleware`): they leave every other request untouched
and add nothing to its path but a string comparison.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sb87.intake_rules.field_rules import rule_for
from sb87.people.forms import REASON_REQUIRED
from sb87.steps import DAG_ID

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PARAM = re.compile(r"Invalid input for param (?P<param>[A-Za-z0-9_]+): (?P<why>.*)", re.S)
_INSTANCE = re.compile(r"^On instance(?P<path>(?:\[[^\]\n]*\])*):\n(?P<value>(?:    .*\n?)+)", re.M)
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property")
_STEP = re.compile(r"\[(?:'(?P<key>[^']*)'|(?P<index>\d+))\]")
MAX_VALUE_SHOWN = 120


def _field_path(param: str, why: str) -> tuple[str, str | None]:
    """(`servers[0].paths[1]`, "'/a/../b'") from jsonschema's text: the failing value's place and repr."""
    field, value = param, None
    if m := _INSTANCE.search(why):
        for step in _STEP.finditer(m["path"]):
            field += f"[{step['index']}]" if step["index"] is not None else f".{step['key']}"
        value = " ".join(line.strip() for line in m["value"].splitlines())
    if m := _REQUIRED.match(why):  # the missing key is the field, not the object that lacks it
        field += f".{m['name']}"
        value = None
    if value is not None and len(value) > MAX_VALUE_SHOWN:
        value = value[: MAX_VALUE_SHOWN - 1] + "…"
    return field, value


def explain_refusal(detail: Any) -> dict[str, Any] | None:
    """The readable body for a trigger refusal's `detail`, or None when it is not a field's refusal."""
    if not isinstance(detail, str) or not (m := _PARAM.match(detail)):
        return None
    field, value = _field_path(m["param"], m["why"])
    found = rule_for(field)
    if found is None:
        return None
    rule_field, rule = found
    message = f"ช่อง {field} ({rule.title}) ไม่ถูกต้อง: {rule.thai} | Field {field} is invalid: {rule.english}"
    if value is not None:
        message += f" — ค่าที่ได้รับ / value given: {value}"
    return {
        "detail": message,
        "field": field,
        "rule_field": rule_field,
        "title": rule.title,
        "rule_th": rule.thai,
        "rule_en": rule.english,
        "value": value,
        "airflow_detail": detail,
    }


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": raw, "more_body": False})


class TriggerRefusalMiddleware:
    """Rewrites this DAG's trigger refusals (HTTP 400 on POST …/dags/<dag_id>/dagRuns); see the module doc."""

    def __init__(self, app: ASGIApp, dag_id: str = DAG_ID) -> None:
        self.app = app
        self.path_end = f"/api/v2/dags/{dag_id}/dagRuns"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not scope.get("path", "").rstrip("/").endswith(self.path_end)
        ):
            await self.app(scope, receive, send)
            return

        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 400:
                    await send(message)  # anything but a refusal streams through as it is
                else:
                    start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            raw = b"".join(chunks)
            try:
                explained = explain_refusal(json.loads(raw).get("detail"))
            except (ValueError, AttributeError):
                explained = None
            if explained is None:  # not a field's refusal (e.g. "has import errors"): Airflow's words stand
                await send(start)
                await send({"type": "http.response.body", "body": raw, "more_body": False})
            else:
                await _send_json(send, 400, explained, list(start.get("headers", [])))

        await self.app(scope, receive, capture)


class DecisionReasonMiddleware:
    """Refuses an answer that chooses reject / send back with a blank reason; see the module doc."""

    def __init__(self, app: ASGIApp, dag_id: str = DAG_ID) -> None:
        self.app = app
        self.path = re.compile(
            rf"/api/v2/dags/{re.escape(dag_id)}/dagRuns/[^/]+/taskInstances/(?P<task>[^/]+)/-?\d+/hitlDetails/?$"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self.path.search(scope.get("path", "")) if scope["type"] == "http" else None
        rule = REASON_REQUIRED.get(match["task"]) if match and scope.get("method") == "PATCH" else None
        if rule is None:
            await self.app(scope, receive, send)
            return

        # Read the whole body to judge it, then hand the same bytes to Airflow.
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if _blank_reason(raw, rule.option, rule.field):
            detail = (
                f'เลือก "{rule.option}" ต้องกรอกช่อง "{rule.title}" ({rule.field}) ก่อน '
                f'| To choose "{rule.option}", fill in "{rule.title}" ({rule.field}): {rule.english}'
            )
            await _send_json(send, 400, {"detail": detail, "field": rule.field, "option": rule.option}, [])
            return

        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


def _blank_reason(raw: bytes, option: str, field: str) -> bool:
    """Whether the answer chooses `option` and leaves `field` blank (unreadable bodies are Airflow's to refuse)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(body, dict) or option not in (body.get("chosen_options") or []):
        return False
    params = body.get("params_input") or {}
    value = params.get(field) if isinstance(params, dict) else None
    return not (isinstance(value, str) and value.strip())
