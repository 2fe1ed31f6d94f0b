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

`DecisionAnswerMiddleware` — Airflow's `PATCH …/taskInstances/<task>/<map_index>/hitlDetails` stores
`params_input` without checking it against the decision's form; the task checks it afterwards, fails,
and its retry meets the same stored answer, so one over-long reason killed a whole request. For this
DAG's decisions the answer is checked first against that decision's own form
(`sb87.people.forms.answer_problem`: the fields' types, lengths and patterns, no unknown keys,
`chosen_options` a list, a reason where the chosen option needs one), after authentication (no valid
token: 401, as Airflow would answer) and within a size bound (413). A bad answer gets HTTP 400 naming
the field, in Thai and English, and the decision stays open for a corrected one. (The Airflow 3.3 UI
shows a failed answer as a toast "Response failed / Bad Request" without the body; the form's own help
text says what each field takes.)

Both are pure ASGI (no Starlette `BaseHTTPMiddleware`): they leave every other request untouched
and add nothing to its path but a string comparison.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from sb87.intake_rules.field_rules import rule_for
from sb87.people.forms import FORMS, answer_problem
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
#: Airflow's own refusal text repeats the whole value: an excerpt is kept beside ours, not the value again.
MAX_AIRFLOW_DETAIL_SHOWN = 2000
#: Far above any decision form (the largest, the server-details document, is under 30 KB at its limits),
#: so that an over-long field is refused naming it; only a body past this is refused unread.
MAX_ANSWER_BYTES = 1024 * 1024


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
    return field, None if value is None else _excerpt(value, MAX_VALUE_SHOWN)


def _excerpt(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked when cut: a refusal never echoes a whole huge value."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        "airflow_detail": _excerpt(detail, MAX_AIRFLOW_DETAIL_SHOWN),
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


class DecisionAnswerMiddleware:
    """Refuses, before Airflow stores it, an answer that breaks its decision's form; see the module doc."""

    def __init__(self, app: ASGIApp, dag_id: str = DAG_ID) -> None:
        self.app = app
        self.path = re.compile(
            rf"/api/v2/dags/{re.escape(dag_id)}/dagRuns/[^/]+/taskInstances/(?P<task>[^/]+)/-?\d+/hitlDetails/?$"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self.path.search(scope.get("path", "")) if scope["type"] == "http" else None
        task_id = unquote(match["task"]) if match and scope.get("method") == "PATCH" else None
        if task_id not in FORMS:
            await self.app(scope, receive, send)
            return
        # Who asks comes first: nobody learns a form's rules, or makes us read a body, without a token.
        if (refusal := await _unauthenticated(scope)) is not None:
            await _send_json(send, refusal[0], {"detail": refusal[1]}, [])
            return

        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > MAX_ANSWER_BYTES:
                kib = MAX_ANSWER_BYTES // 1024
                detail = f"คำตอบยาวเกิน {kib} KiB | The answer is larger than {kib} KiB"
                await _send_json(send, 413, {"detail": detail}, [])
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None  # not JSON: Airflow's own validation refuses it in its words
        refused = answer_problem(task_id, answer) if answer is not None else None
        if refused is not None:
            body = {"detail": refused.detail, "field": refused.field, "rule_th": refused.thai,
                    "rule_en": refused.english}
            await _send_json(send, 400, body, [])
            return

        pending = list(messages)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


async def _unauthenticated(scope: Scope) -> tuple[int, str] | None:
    """(status, detail) when the request carries no valid token, as Airflow's own check would answer."""
    # Imported here: the api-server's security module costs 2.4 s to import (measured), and every Airflow
    # component imports this plugin, but only the api-server runs its middlewares.
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token
    from fastapi import HTTPException
    from starlette.requests import Request

    request = Request(scope)
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = credentials if scheme.lower() == "bearer" and credentials else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    try:
        await resolve_user_from_token(token)
    except HTTPException as err:
        return err.status_code, str(err.detail)
    return None
