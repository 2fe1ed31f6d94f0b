"""Refusals and forms a person can read (issue 13 items 6–8), without an Airflow server.

- every request field has its rule in Thai and English, and the trigger form shows exactly that rule;
- the api-server plugin, installed the way Airflow 3.3 installs plugin middlewares, turns a trigger
  refusal's regular expression into the field, its label and its rule (keeping Airflow's text), and
  refuses a rejection or a send-back without a reason before Airflow records it;
- the decision forms need no typing to approve, endorse or order (as the Airflow 3.3 UI decides
  what is required), and their bodies render as Markdown tables, not as raw "| … |" lines.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

from sb87 import steps
from sb87.intake_rules.api_messages import explain_refusal
from sb87.intake_rules.field_rules import FIELD_RULES, rule_for
from sb87.intake_rules.params import RESTORE_SCHEMA, SERVER_SCHEMA, request_params, sample_request
from sb87.people import forms
from sb87.settings import TEMPLATES_DIR

REPO = Path(__file__).resolve().parents[1]
TRIGGER = f"/api/v2/dags/{steps.DAG_ID}/dagRuns"


def hitl_path(task_id: str, run_id: str = "manual__2026-11-25T10:00:00+00:00") -> str:
    return f"/api/v2/dags/{steps.DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"


# --- The one table of rules ------------------------------------------------------------------------


def test_every_request_field_has_a_rule_in_thai_and_english() -> None:
    nested = [f"servers.{k}" for k in SERVER_SCHEMA["properties"]] + [
        f"restore.{k}" for k in RESTORE_SCHEMA["properties"]
    ]
    for field in [*request_params(), *nested]:
        rule = FIELD_RULES[field]
        assert rule.title and rule.thai and rule.english, field
        assert any("\u0e00" <= ch <= "\u0e7f" for ch in rule.thai), f"{field}: Thai rule has no Thai"
        assert sum(ch.isascii() and ch.isalpha() for ch in rule.english) > 10, f"{field}: no English rule"


def test_trigger_form_shows_each_fields_rule_from_the_table() -> None:
    for name, param in request_params().items():
        assert param.description == FIELD_RULES[name].description
        assert param.schema["title"] == FIELD_RULES[name].title
    assert SERVER_SCHEMA["properties"]["hostname"]["description"] == FIELD_RULES["servers.hostname"].description


def test_trigger_form_help_shows_no_regular_expression() -> None:
    for param in request_params().values():
        assert "(?" not in param.description and "^" not in param.description


@pytest.mark.parametrize(
    ("field", "rule_key"),
    [
        ("memo_no", "memo_no"),
        ("servers[0].hostname", "servers.hostname"),
        ("servers[3].paths[12]", "servers.paths"),
        ("retention.daily", "retention"),  # no words of its own: the parent's
        ("restore.as_of", "restore.as_of"),
    ],
)
def test_a_field_is_explained_by_its_deepest_rule(field: str, rule_key: str) -> None:
    assert rule_for(field) == (rule_key, FIELD_RULES[rule_key])


def test_an_unknown_field_has_no_rule() -> None:
    assert rule_for("no_such_field") is None


# --- Trigger refusals in words ---------------------------------------------------------------------


def airflow_refusal(conf: dict[str, Any]) -> str:
    """The `detail` Airflow 3.3 puts in the HTTP 400 of a trigger whose conf breaks a Param schema."""
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(request_params())
    try:
        for key, value in conf.items():
            params[key] = value  # raises "Invalid input for param <key>: <jsonschema's text>"
    except ValueError as err:
        return str(err)
    raise AssertionError(f"conf {conf} was not refused")


def bad_conf(**changes: Any) -> dict[str, Any]:
    conf = copy.deepcopy(sample_request())
    conf.update(changes)
    return conf


@pytest.mark.parametrize(
    ("changes", "field", "rule_key", "value"),
    [
        ({"memo_no": "x"}, "memo_no", "memo_no", "'x'"),
        ({"contact_email": "somying at doh"}, "contact_email", "contact_email", "'somying at doh'"),
        ({"schedule": "every day"}, "schedule", "schedule", "'every day'"),
        ({"services": []}, "services", "services", "[]"),
        ({"retention": {"daily": -1, "weekly": 4, "monthly": 6}}, "retention.daily", "retention", "-1"),
    ],
)
def test_top_level_refusal_names_the_field_and_its_rule(
    changes: dict[str, Any], field: str, rule_key: str, value: str
) -> None:
    original = airflow_refusal(changes)
    body = explain_refusal(original)
    rule = FIELD_RULES[rule_key]
    assert body is not None
    assert (body["field"], body["rule_field"], body["title"]) == (field, rule_key, rule.title)
    assert (body["rule_th"], body["rule_en"], body["value"]) == (rule.thai, rule.english, value)
    assert field in body["detail"] and rule.thai in body["detail"] and rule.english in body["detail"]
    assert "(?" not in body["detail"], "the person still sees a regular expression"
    assert body["airflow_detail"] == original


def test_nested_refusal_names_the_server_and_path_index() -> None:
    servers = copy.deepcopy(sample_request()["servers"])
    servers[0]["paths"] = ["/srv/ok", "/srv/../etc"]
    body = explain_refusal(airflow_refusal({"servers": servers}))
    assert body is not None
    assert body["field"] == "servers[0].paths[1]"
    assert body["rule_th"] == FIELD_RULES["servers.paths"].thai
    assert body["value"] == "'/srv/../etc'"


def test_hostile_hostname_refusal_is_explained_not_echoed_as_a_pattern() -> None:
    servers = copy.deepcopy(sample_request()["servers"])
    servers[0]["hostname"] = "fs01; rm -rf /"
    body = explain_refusal(airflow_refusal({"servers": servers}))
    assert body is not None
    assert body["field"] == "servers[0].hostname"
    assert "RFC 1123" in body["detail"] and "253" in body["detail"]


def test_missing_property_is_named_as_the_field() -> None:
    body = explain_refusal(airflow_refusal({"restore": {"hostname": "fileserver01", "as_of": "2026-11-20T10:00Z"}}))
    assert body is not None
    assert body["field"] == "restore.paths"
    assert body["value"] is None


@pytest.mark.parametrize(
    "detail",
    [
        "Dag with dag_id: 'sb87_server_backup_service' has import errors and cannot be triggered",
        "Invalid input for param no_such_param: 1 is not of type 'string'",
        None,
        {"loc": ["body"], "msg": "field required"},
    ],
)
def test_other_refusals_are_left_as_airflow_wrote_them(detail: Any) -> None:
    assert explain_refusal(detail) is None


# --- The middlewares, installed as Airflow 3.3 installs plugin middlewares --------------------------


def fake_api_server() -> tuple[FastAPI, list[dict[str, Any]]]:
    """Airflow's two endpoints as far as the middlewares see them: same paths, same 400 details."""
    app = FastAPI()
    received: list[dict[str, Any]] = []

    @app.post("/api/v2/dags/{dag_id}/dagRuns")
    async def trigger(dag_id: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        if dag_id == "broken":
            raise HTTPException(400, f"Dag with dag_id: '{dag_id}' has import errors and cannot be triggered")
        conf = body.get("conf") or {}
        if conf != sample_request():
            raise HTTPException(400, airflow_refusal({k: v for k, v in conf.items() if v != sample_request()[k]}))
        return {"dag_run_id": "manual__1", "conf": conf}

    @app.patch("/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails")
    async def answer(dag_id: str, run_id: str, task_id: str, map_index: int, request: Request) -> dict[str, Any]:
        body = await request.json()
        received.append({"task_id": task_id, **body})
        return {"chosen_options": body["chosen_options"], "params_input": body.get("params_input") or {}}

    return app, received


GOOD_TOKEN = "a-token-the-fake-auth-manager-accepts"


async def fake_authentication(scope: dict[str, Any]) -> tuple[int, str] | None:
    """Airflow's token check as the middleware meets it (the real one runs in the end-to-end tests)."""
    headers = dict(scope.get("headers") or [])
    return None if headers.get(b"authorization") == f"Bearer {GOOD_TOKEN}".encode() else (401, "Not authenticated")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    """The fake api-server with the plugins folder's middlewares added by Airflow's own `init_plugins`."""
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import init_plugins

    monkeypatch.setattr("sb87.intake_rules.api_messages._unauthenticated", fake_authentication)

    app, received = fake_api_server()
    saved = settings.PLUGINS_FOLDER
    settings.PLUGINS_FOLDER = str(REPO / "plugins")
    plugins_manager._get_plugins.cache_clear()
    plugins_manager.get_fastapi_plugins.cache_clear()
    try:
        init_plugins(app)
    finally:
        settings.PLUGINS_FOLDER = saved
        plugins_manager._get_plugins.cache_clear()
        plugins_manager.get_fastapi_plugins.cache_clear()
    names = {m.cls.__name__ for m in app.user_middleware}
    assert {"TriggerRefusalMiddleware", "DecisionAnswerMiddleware"} <= names, "plugin not registered"
    with TestClient(app, headers={"Authorization": f"Bearer {GOOD_TOKEN}"}) as client:
        yield client, received


def test_trigger_refusal_over_http_names_field_and_rule_in_words(api: tuple[TestClient, list]) -> None:
    client, _ = api
    response = client.post(TRIGGER, json={"logical_date": None, "conf": bad_conf(contact_phone="call me")})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "contact_phone"
    assert body["detail"].startswith("ช่อง contact_phone (โทรศัพท์) ไม่ถูกต้อง: ")
    assert FIELD_RULES["contact_phone"].english in body["detail"]
    assert body["airflow_detail"].startswith("Invalid input for param contact_phone: 'call me' does not match")
    assert int(response.headers["content-length"]) == len(response.content)


def test_accepted_trigger_passes_through_unchanged(api: tuple[TestClient, list]) -> None:
    client, _ = api
    response = client.post(TRIGGER, json={"logical_date": None, "conf": sample_request()})
    assert response.status_code == 200
    assert response.json() == {"dag_run_id": "manual__1", "conf": sample_request()}


def test_refusals_of_other_dags_and_other_kinds_are_untouched(api: tuple[TestClient, list]) -> None:
    client, _ = api
    other = client.post("/api/v2/dags/broken/dagRuns", json={"logical_date": None, "conf": {}})
    assert other.status_code == 400
    assert other.json() == {"detail": "Dag with dag_id: 'broken' has import errors and cannot be triggered"}


@pytest.mark.parametrize("reason", [None, "", "   \n "])
def test_rejecting_without_a_reason_is_refused_before_airflow_records_it(
    api: tuple[TestClient, list], reason: str | None
) -> None:
    client, received = api
    response = client.patch(
        hitl_path(steps.DIRECTOR_DECISION),
        json={"chosen_options": [steps.REJECT], "params_input": {"reason": reason, "sub_units": []}},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "reason"
    assert forms.DIRECTOR_REASON in response.json()["detail"]
    assert received == [], "the answer reached Airflow"


def test_rejecting_with_params_left_out_is_refused(api: tuple[TestClient, list]) -> None:
    client, received = api
    response = client.patch(hitl_path(steps.DIRECTOR_DECISION), json={"chosen_options": [steps.REJECT]})
    assert response.status_code == 400
    assert received == []


def test_approving_without_a_reason_reaches_airflow_unchanged(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": [steps.APPROVE], "params_input": {"reason": None, "sub_units": None}}
    response = client.patch(hitl_path(steps.DIRECTOR_DECISION), json=body)
    assert response.status_code == 200
    assert received == [{"task_id": steps.DIRECTOR_DECISION, **body}]


def test_rejecting_with_a_reason_reaches_airflow_unchanged(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": [steps.REJECT], "params_input": {"reason": "ไม่มีงบประมาณ", "sub_units": []}}
    assert client.patch(hitl_path(steps.DIRECTOR_DECISION), json=body).status_code == 200
    assert received == [{"task_id": steps.DIRECTOR_DECISION, **body}]


def test_sending_back_needs_a_reason_in_every_round(api: tuple[TestClient, list]) -> None:
    client, received = api
    for n in range(1, steps.MAX_ROUNDS + 1):
        refused = client.patch(
            hitl_path(steps.review_task(n)),
            json={"chosen_options": [steps.SEND_BACK], "params_input": {"reason": None}},
        )
        assert refused.status_code == 400, n
        endorsed = client.patch(
            hitl_path(steps.review_task(n)), json={"chosen_options": [steps.ENDORSE], "params_input": {"reason": None}}
        )
        assert endorsed.status_code == 200, n
    assert [r["chosen_options"] for r in received] == [[steps.ENDORSE]] * steps.MAX_ROUNDS


def test_decisions_without_a_reason_rule_are_untouched(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": [steps.SUBMIT], "params_input": {"notes": None}}
    assert client.patch(hitl_path(steps.details_task(1)), json=body).status_code == 200
    assert received == [{"task_id": steps.details_task(1), **body}]


def test_an_answer_without_a_token_gets_401_before_its_form_is_judged(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": [steps.REJECT], "params_input": {"reason": "x" * 5000}}
    response = client.patch(hitl_path(steps.DIRECTOR_DECISION), json=body, headers={"Authorization": ""})
    assert response.status_code == 401 and "field" not in response.json()
    assert received == []


@pytest.mark.parametrize(("task", "params", "field", "words"), [
    (steps.DIRECTOR_DECISION, {"reason": "ก" * 100_000, "sub_units": []}, "reason", "ยาวเกิน 1000 ตัวอักษร"),
    (steps.review_task(1), {"reason": "ข" * 1510}, "reason", "longer than 1000 characters"),
    (steps.details_task(1), {"location": "ตู้ R04\r\nX-Injected: 1"}, "location", "line break"),
    (steps.details_task(1), {"data_paths": "/etc/shadow"}, "data_paths", "the form has no such field"),
    (steps.details_task(1), {"bogus": "x"}, "bogus", "the form has no such field"),
    (steps.ASSIGN, {"staff": []}, "staff", "at least 1"),
    (steps.ASSIGN, {"staff": ["nobody"]}, "staff[0]", "not one of the values offered"),
    (steps.DIRECTOR_DECISION, {"reason": "\u200b\u2060\u3164", "sub_units": []}, "reason", "invisible"),
    (steps.DIRECTOR_DECISION, {"reason": "ไม่อนุมัติ \u202e gnp.exe", "sub_units": []}, "reason", "right-to-left"),
])
def test_an_answer_that_breaks_its_form_is_refused_naming_the_field_and_the_decision_stays_open(
    api: tuple[TestClient, list], task: str, params: dict[str, Any], field: str, words: str
) -> None:
    """Airflow stores `params_input` unchecked and the task fails on it afterwards, for good: the
    answer is judged by the same rules first, and refused in Thai and English."""
    client, received = api
    option = {steps.DIRECTOR_DECISION: steps.REJECT, steps.review_task(1): steps.SEND_BACK,
              steps.details_task(1): steps.SUBMIT, steps.ASSIGN: steps.ORDER}[task]
    response = client.patch(hitl_path(task), json={"chosen_options": [option], "params_input": params})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and words in body["detail"]
    assert body["detail"].startswith(f"ช่อง {field}: ") and f"| Field {field}: " in body["detail"]
    assert len(response.content) < 2000, "the refusal must not echo the value"
    assert received == []


def test_chosen_options_as_a_string_is_refused_not_matched_as_a_substring(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": f"x{steps.REJECT}x", "params_input": {"reason": None, "sub_units": []}}
    response = client.patch(hitl_path(steps.DIRECTOR_DECISION), json=body)
    assert response.status_code == 400 and response.json()["field"] == "chosen_options"
    assert received == []


def test_an_answer_larger_than_any_form_is_refused_unread(api: tuple[TestClient, list]) -> None:
    client, received = api
    body = {"chosen_options": [steps.APPROVE], "params_input": {"reason": "ก" * 400_000}}
    assert client.patch(hitl_path(steps.DIRECTOR_DECISION), json=body).status_code == 413
    assert received == []


def test_every_answer_the_middleware_takes_is_one_the_decision_task_takes() -> None:
    """What the check accepts, the task's own validation (each field through its `Param`, no unknown
    keys) accepts too: a taken answer cannot fail the task afterwards."""
    from airflow.sdk.definitions.param import ParamsDict

    accepted = [
        (steps.DIRECTOR_DECISION, {"reason": "ไม่มีงบประมาณ\nปีหน้ายื่นใหม่", "sub_units": ["ผคน."]}),
        (steps.review_task(2), {"reason": None}),
        (steps.details_task(1), {"location": "ตู้ R04 ช่อง U12", "notes": "บรรทัด 1\nบรรทัด 2"}),
        (steps.ASSIGN, {"staff": [forms.assign_params()["staff"].value[0]], "instructions": None}),
    ]
    for task, params in accepted:
        assert forms.answer_problem(task, {"chosen_options": ["x"], "params_input": params}) is None, task
        form = ParamsDict(forms.FORMS[task]())
        for key, value in params.items():
            form[key] = value  # raises ParamValidationError on what the task would refuse
        form.validate()


# --- Decision forms: what the Airflow 3.3 UI treats as required -------------------------------------


def ui_requires(schema: dict[str, Any]) -> bool:
    """Airflow 3.3's UI rule (ui/dist, flexible form): a field is required when its schema has a type
    that is not a list containing "null"; an empty required field disables every option button."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def required_fields(params: dict[str, Any]) -> set[str]:
    return {name for name, param in params.items() if ui_requires(param.schema)}


def test_director_can_approve_without_typing() -> None:
    assert required_fields(forms.director_params()) == set()


def test_group_director_can_endorse_without_typing() -> None:
    assert required_fields(forms.review_params()) == set()


def test_order_needs_only_the_staff_which_is_prefilled() -> None:
    params = forms.assign_params()
    assert required_fields(params) == {"staff"}
    assert params["staff"].value, "the form would open with its only required field empty"


def test_server_details_require_only_what_a_backup_policy_needs() -> None:
    assert required_fields(forms.details_params()) == {"os"}


@pytest.mark.parametrize(
    "form", [forms.director_params, forms.details_params, forms.review_params, forms.assign_params]
)
def test_each_form_opens_valid_and_accepts_cleared_optional_fields(form: Any) -> None:
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(form())
    params.validate()  # the defaults pass their own schema, or the task fails as it starts
    for name, param in form().items():
        if not ui_requires(param.schema):
            params[name] = None  # the UI sends null for a cleared text box or an emptied multi-select


def test_one_line_fields_still_refuse_a_newline() -> None:
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(forms.details_params())
    with pytest.raises(ValueError, match="location"):
        params["location"] = "ห้อง DC\nชั้น 3"


def test_reason_rules_cover_reject_and_every_send_back_round() -> None:
    assert forms.REASON_REQUIRED[steps.DIRECTOR_DECISION].option == steps.REJECT
    for n in range(1, steps.MAX_ROUNDS + 1):
        assert forms.REASON_REQUIRED[steps.review_task(n)].option == steps.SEND_BACK


# --- Decision bodies: Markdown tables as the UI renders them (GFM tables, no HTML) ------------------


def render(name: str, **context: Any) -> str:
    from airflow.sdk import DAG

    env = DAG(dag_id="render_check", schedule=None).get_template_env()  # Airflow's sandbox, StrictUndefined
    return env.from_string((TEMPLATES_DIR / "hitl" / f"{name}.md.j2").read_text(encoding="utf-8")).render(**context)


def markdown_rows(text: str) -> tuple[list[list[str]], list[str]]:
    """(table rows as cell texts, paragraphs that still start with '|') as a GFM renderer sees them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows, row, in_cell, stray = [], [], False, []
    for tok in tokens:
        if tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            rows.append(row)
        elif tok.type in ("td_open", "th_open"):
            in_cell = True
        elif tok.type in ("td_close", "th_close"):
            in_cell = False
        elif tok.type == "inline":
            if in_cell:
                row.append(tok.content)
            elif tok.content.lstrip().startswith("|"):
                stray.append(tok.content)
    return rows, stray


def test_review_body_shows_typed_paths_as_text_never_as_links_or_images() -> None:
    """Staff type the document's paths: a backtick must not end a code span and let Markdown through
    (an image made the director's browser fetch a URL; a link posed as a new form)."""
    hostile = ("/srv/a` ![x](http://127.0.0.1:9/pixel.png) `\n"
               "/srv/b [แบบฟอร์มใหม่](http://127.0.0.1:9/form) <http://127.0.0.1:9/auto>")
    body = render("review_details", request=sample_request(), round_no=1, last_round=False,
                  entry={"by": "สุดา", "params_input": {"data_paths": hostile, "server_name": "fs01"}})
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    children = [child for tok in tokens if tok.children for child in tok.children]
    assert not [c for c in children if c.type in ("link_open", "image", "code_inline", "html_inline")]
    assert "/srv/a" in body and "แบบฟอร์มใหม่" in body


def two_server_request(**changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(sample_request())
    second = {**request["servers"][0], "hostname": "dbserver02", "paths": ["/var/lib/postgresql", "/etc/app"]}
    request["servers"].append(second)
    request.update(changes)
    return request


def test_director_body_shows_every_server_as_a_table_row() -> None:
    rows, stray = markdown_rows(render("director_decision", request=two_server_request()))
    assert stray == []
    hosts = [row[0] for row in rows]
    assert "fileserver01" in hosts and "dbserver02" in hosts
    assert ["รายการ", "รายละเอียด"] in rows
    assert any(row[0] == "หนังสือที่" and "20 พฤศจิกายน 2569" in row[1] for row in rows)  # Buddhist Era


def test_director_body_keeps_its_table_when_a_subject_holds_markdown() -> None:
    plain, _ = markdown_rows(render("director_decision", request=two_server_request()))
    hostile = two_server_request(subject="ขอใช้ | บริการ *ด่วน* [คลิก](http://x)")
    rows, stray = markdown_rows(render("director_decision", request=hostile))
    assert stray == [] and len(rows) == len(plain)
    html = MarkdownIt("commonmark").enable("table").render(render("director_decision", request=hostile))
    assert "<td>ขอใช้ | บริการ *ด่วน* [คลิก](http://x)</td>" in html  # shown as typed: no emphasis, no link


def test_director_body_shows_the_restore_request_as_a_table() -> None:
    request = two_server_request(
        services=["backup", "restore"],
        restore={"hostname": "fileserver01", "paths": ["/srv/a b"], "as_of": "2026-11-20T18:00:00+07:00"},
    )
    rows, stray = markdown_rows(render("director_decision", request=request))
    assert stray == []
    assert ["fileserver01", "`/srv/a b`", "20 พฤศจิกายน 2569 18:00"] in rows


def test_review_body_shows_the_document_as_a_table_with_blank_optional_fields() -> None:
    fields = {
        **{k: p.value for k, p in forms.details_params().items()},
        "server_name": "fs01",
        "address": "10.0.0.5",
        "os": "Debian 12",
        "data_paths": "/srv/a\n/srv/b",
        "size_gb": 2,
    }
    text = render(
        "review_details",
        request=sample_request(),
        round_no=1,
        last_round=False,
        entry={"params_input": fields, "by": "สมชาย ใจดี"},
    )
    rows, stray = markdown_rows(text)
    assert stray == []
    # header + one row per field of the document (those staff fill in, and the policy's from the request)
    assert len(rows) == 1 + len(forms.details_params()) + len(forms.POLICY_FIELDS)
    assert ["ข้อมูลที่ต้องสำรอง / กู้คืน", "/srv/a · /srv/b"] in rows
    assert ["หมายเหตุ", "-"] in rows


def _policy_of(request: dict[str, Any]) -> dict[str, Any]:
    from sb87.steps.step3_coordinate import from_request

    document = from_request(request)
    return {key: document[key] for key in forms.POLICY_FIELDS}


def test_server_details_body_quotes_the_reason_it_was_sent_back() -> None:
    text = render(
        "server_details",
        request=sample_request(),
        round_no=2,
        sent_back={"by": "ผู้อำนวยการกลุ่ม", "reason": "แก้หมายเลข IP"},
        policy=_policy_of(sample_request()),
    )
    assert "> แก้หมายเลข IP" in text
    first = render("server_details", request=sample_request(), round_no=1, sent_back=None,
                   policy=_policy_of(sample_request()))
    assert "ส่งกลับ" not in first.split("###", 1)[1].split("\n\n")[1]


def test_the_fields_the_policy_is_built_from_are_shown_read_only_not_asked() -> None:
    """What the group/division director endorses is what runs: the backup fields are the request's."""
    assert not set(forms.POLICY_FIELDS) & set(forms.details_params())
    request = sample_request()
    rows, _ = markdown_rows(render("server_details", request=request, round_no=1, sent_back=None,
                                   policy=_policy_of(request)))
    shown = dict(r for r in rows if len(r) == 2)
    assert shown["ชื่อเครื่อง Server"] == request["servers"][0]["hostname"]
    assert request["servers"][0]["paths"][0] in shown["ข้อมูลที่ต้องสำรอง / กู้คืน"]


def test_a_recorded_document_cannot_change_what_the_policy_backs_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an answer stored by other means (an admin, an old form) cannot put another folder or schedule
    into the endorsed document: its policy fields are the request's own."""
    from sb87.steps import step3_coordinate as step3

    request = sample_request()
    forged = {"os": "Debian 12", "data_paths": "/etc/shadow", "backup_window": "daily 01:00; rm -rf / #"}
    monkeypatch.setattr(step3, "_answer", lambda context, task_id, role: {"params": forged, "by": "x", "by_id": "x"})

    class TaskInstance:
        def xcom_pull(self, task_ids: str) -> dict[str, Any]:
            assert task_ids == steps.VALIDATE
            return request

    fields = step3.recorded_fields({"ti": TaskInstance()}, 1)
    assert fields["data_paths"] == "\n".join(request["servers"][0]["paths"])
    assert fields["backup_window"] == request["schedule"] and fields["os"] == "Debian 12"


def test_assign_body_names_the_endorsed_document() -> None:
    text = render("assign_staff", request=sample_request(), document={"path": "/data/requests/x/server_details.pdf"})
    assert "`/data/requests/x/server_details.pdf`" in text
