"""The operations board (งานฝากเครื่อง Server): a FastAPI app the api-server mounts at `URL_PREFIX`.

Registered by `plugins/sb87_plugin.py` through the plugin's `fastapi_apps`, and shown in the UI's
navigation through `external_views` (the UI embeds `URL_PREFIX/` in a frame at `/plugin/sb87-board`).

Airflow does not authenticate a plugin's app: every route here takes Airflow's own dependencies —
`get_user` (the JWT from the `Authorization` header or the UI's `_token` cookie; none: 401) and
`requires_access_dag("GET", RUN)` on the request DAG (the auth manager's DAG check, so it works under
SimpleAuthManager and FAB alike) — and then the roster: a user who is not a roster person gets 403.

Routes: `/` the page (server-rendered), `/api/board` the same data as JSON, `/documents/{run_id}` a
request's memos (PDF), `/api/report`, `/report.csv`, `/report.xlsx` the monthly report (`?month=YYYY-MM`,
default last month; `sb87.board.report`). Filters `unit`, `step` (1–7), `person` (a roster id), `mine=1`
(waiting for the logged-in user); a bad value gets 400 naming the field.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sb87 import steps
from sb87.board import URL_PREFIX, data, report
from sb87.settings import TEMPLATES_DIR, Person, organisation, registered_servers
from sb87.timekeeping.deadlines import limits_from_config
from sb87.timekeeping.workdays import default_calendar


class BadFilter(Exception):
    """A filter value the board cannot use: 400, naming the field."""

    def __init__(self, field: str, message: str, value: str) -> None:
        super().__init__(message)
        self.field, self.message, self.value = field, message, value

    def body(self) -> dict[str, str]:
        return {"detail": f"ช่อง {self.field}: {self.message}", "field": self.field, "value": self.value[:200]}


def roster_viewer(user: BaseUser) -> Person:
    """The roster person of an authenticated Airflow user; 403 for anyone the roster does not name."""
    name = user.get_name()
    try:
        return organisation().person(name)
    except KeyError:
        raise HTTPException(403, f"ผู้ใช้ {name} ไม่มีบทบาทในงาน SB-8-7 (not on the SB-8-7 roster)") from None


def viewer(user: GetUserDep,
           _dag: Annotated[None, Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=steps.DAG_ID))],
           ) -> Person:
    """Airflow's own checks (a valid token, read access to the request DAG's runs), then the roster."""
    return roster_viewer(user)


def loaded_board(session: SessionDep) -> dict[str, Any]:
    return load_board(session)


def report_records(session: SessionDep) -> Any:
    """What the monthly report reads, for a month: a function of (start, end, now)."""
    from sb87.records import store

    def read(start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
        eng = store.project_engine()
        return {"runs": data.airflow_runs(session, now, since=start),
                "summaries": report.step_summaries(eng, start, end),
                "policies": list(data.server_facts(eng).policies.values()),
                "checks": report.freshness_checks(eng, start, end),
                "drills": report.month_drills(eng, start, end)}

    return read


Viewer = Annotated[Person, Depends(viewer)]
ReportRecords = Annotated[Any, Depends(report_records)]
Loaded = Annotated[dict[str, Any], Depends(loaded_board)]


#: A page number beyond any board's length (100 open requests a page): refused as a typo, not searched.
MAX_PAGE = 1000

#: Threads that read the project database's server facts beside each page's Airflow read (they need
#: nothing from it); two, so that two pages loading at once do not queue behind each other.
_PROJECT_READER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sb87-board-project")


#: The request DAG's runs as the board last read them, each read again when it changes.
_RUNS = data.ChangedRuns()


def load_board(session: Any) -> dict[str, Any]:
    """Everything the board reads, once per page: runs (each read again only when it changed,
    `data.ChangedRuns`), project facts, server facts, the inventory. The server facts are read from the
    project database while Airflow's runs are read (bench/board.py: they were a fifth of the page's time,
    one after the other)."""
    from sb87.records import store

    now = datetime.now(UTC)
    t0 = time.perf_counter()
    eng = store.project_engine()
    servers = _PROJECT_READER.submit(data.server_facts, eng)
    runs, _ = _RUNS(session, now)
    t1 = time.perf_counter()
    loaded = {"now": now, "runs": runs, "facts": data.project_facts(eng, [r.run_id for r in runs]),
              "servers": servers.result(), "inventory": list(registered_servers().values())}
    # "airflow": the runs' fingerprints and the runs read again; "project": what the page waited for the
    # project database after that.
    loaded["timing"] = {"airflow": t1 - t0, "project": time.perf_counter() - t1}
    return loaded


def parse_filters(params: dict[str, str], viewer: Person, units: set[str]) -> dict[str, Any]:
    """The filters of a request, checked: unknown unit, step or person → `BadFilter` naming the field."""
    chosen: dict[str, Any] = {"unit": None, "step": None, "person": None, "page": 1}
    if unit := params.get("unit", "").strip():
        if unit not in units:
            raise BadFilter("unit", "ไม่รู้จักหน่วยงานนี้ (unknown unit)", unit)
        chosen["unit"] = unit
    if step := params.get("step", "").strip():
        numbers = {s.number for s in steps.STEPS}
        if not step.isdigit() or int(step) not in numbers:
            raise BadFilter("step", f"ต้องเป็นเลขขั้นตอน {min(numbers)}–{max(numbers)} (a step number)", step)
        chosen["step"] = int(step)
    if person := params.get("person", "").strip():
        ids = {p.id for p in organisation().people}
        if person not in ids:
            raise BadFilter("person", "ไม่มีผู้ใช้นี้ในทะเบียนผู้ปฏิบัติงาน (not on the roster)", person)
        chosen["person"] = person
    mine = params.get("mine", "").strip()
    if mine not in ("", "0", "1"):
        raise BadFilter("mine", "ต้องเป็น 0 หรือ 1 (0 or 1)", mine)
    if mine == "1":
        chosen["person"] = viewer.id
    if page := params.get("page", "").strip():
        if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
            raise BadFilter("page", f"ต้องเป็นเลขหน้า 1–{MAX_PAGE} (a page number)", page)
        chosen["page"] = int(page)
    return chosen


def board_data(loaded: dict[str, Any], filters: dict[str, Any]) -> dict[str, Any]:
    return data.board(loaded["runs"], loaded["facts"], loaded["servers"], loaded["inventory"], loaded["now"],
                      default_calendar(), limits_from_config(), organisation(), **filters)


def _known_units(loaded: dict[str, Any]) -> set[str]:
    from sb87.intake_rules.params import AGENCY_EXAMPLES

    return data.known_units(loaded["runs"], loaded["inventory"], AGENCY_EXAMPLES)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR / "board")),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


def _page_links(params: dict[str, str], page: int, pages: int) -> dict[str, str | None]:
    """Query strings of the previous and next pages of the open list, with the same filters."""
    def at(number: int) -> str | None:
        return "?" + urlencode({**params, "page": str(number)}) if 1 <= number <= pages else None
    return {"previous": at(page - 1), "next": at(page + 1)}


def airflow_root(request: Request) -> str:
    """The api-server's own root path (the board is mounted under it), for links into the Airflow UI."""
    root = request.scope.get("root_path", "")
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else root


def create_app() -> FastAPI:
    """The board's app. Tests put seeded data behind the same routes by overriding `viewer` and
    `loaded_board` (`app.dependency_overrides`)."""
    app = FastAPI(title="SB-8-7 operations board", docs_url=None, redoc_url=None, openapi_url=None)
    templates = _environment()

    @app.get("/api/board")
    def board_json(request: Request, viewer: Viewer, loaded: Loaded) -> JSONResponse:
        try:
            filters = parse_filters(dict(request.query_params), viewer, _known_units(loaded))
        except BadFilter as bad:
            return JSONResponse(bad.body(), status_code=400)
        t0 = time.perf_counter()
        body = {"viewer": {"id": viewer.id, "name": viewer.full_name}, "filters": filters,
                **board_data(loaded, filters)}
        timing = {**loaded.get("timing", {}), "rows": time.perf_counter() - t0}
        # Where the time went, for the benchmark and for a person with the browser's network panel.
        return JSONResponse(body, headers={"Server-Timing": ", ".join(f"{k};dur={v * 1000:.1f}"
                                                                       for k, v in timing.items())})

    @app.get("/", response_class=HTMLResponse)
    def board_page(request: Request, viewer: Viewer, loaded: Loaded) -> HTMLResponse:
        units = _known_units(loaded)
        params = dict(request.query_params)
        error, status = None, 200
        try:
            filters = parse_filters(params, viewer, units)
        except BadFilter as bad:
            error, status = bad.body(), 400
            filters = {"unit": None, "step": None, "person": None, "page": 1}
        board = board_data(loaded, filters)
        html = templates.get_template("board.html.j2").render(
            pages=_page_links(params, board["page"], board["pages"]),
            board=board, viewer=viewer, error=error, params=params, filters=filters,
            units=sorted(units), steps=steps.STEPS, people=organisation().people, dag_id=steps.DAG_ID,
            airflow=airflow_root(request), prefix=request.scope.get("root_path", ""),
            mine_link="?" + urlencode({"mine": "1"}))
        return HTMLResponse(html, status_code=status)

    def month_numbers(request: Request, read: Any) -> dict[str, Any] | JSONResponse:
        now = datetime.now(UTC)
        text = request.query_params.get("month") or report.previous_month(now)
        try:
            start, end = report.parse_month(text, now)
        except report.BadMonth as bad:
            return JSONResponse({"detail": f"ช่อง month: {bad}", "field": "month", "value": text[:200]},
                                status_code=400)
        return report.report(start, end, **read(start, end, now))

    @app.get("/api/report")
    def report_json(request: Request, viewer: Viewer, read: ReportRecords) -> JSONResponse:
        numbers = month_numbers(request, read)
        return numbers if isinstance(numbers, JSONResponse) else JSONResponse(numbers)

    @app.get("/report.csv")
    def report_csv(request: Request, viewer: Viewer, read: ReportRecords) -> Response:
        numbers = month_numbers(request, read)
        if isinstance(numbers, JSONResponse):
            return numbers
        return Response(report.as_csv(numbers), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="sb87-report-{numbers["month"]}.csv"'})

    @app.get("/report.xlsx")
    def report_xlsx(request: Request, viewer: Viewer, read: ReportRecords) -> Response:
        numbers = month_numbers(request, read)
        if isinstance(numbers, JSONResponse):
            return numbers
        return Response(report.as_xlsx(numbers), headers={
            "Content-Disposition": f'attachment; filename="sb87-report-{numbers["month"]}.xlsx"'},
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.get("/documents/{run_id}", response_class=HTMLResponse)
    def documents_page(run_id: str, request: Request, viewer: Viewer, session: SessionDep) -> HTMLResponse:
        files = _documents(session, run_id)
        html = templates.get_template("documents.html.j2").render(
            run_id=run_id, files=[f.name for f in files], prefix=request.scope.get("root_path", ""),
            airflow=airflow_root(request), dag_id=steps.DAG_ID)
        return HTMLResponse(html)

    @app.get("/documents/{run_id}/{name}")
    def document(run_id: str, name: str, viewer: Viewer, session: SessionDep) -> FileResponse:
        for path in _documents(session, run_id):
            if path.name == name:
                return FileResponse(path, media_type="application/pdf", filename=name)
        raise HTTPException(404, "ไม่มีเอกสารนี้ (no such document)")

    return app


def _documents(session: Any, run_id: str) -> list[Path]:
    """A request's PDFs; 404 for a run the request DAG does not have (no folder is made for it)."""
    from sb87.documents.filing import request_documents

    if not data.run_exists(session, run_id):
        raise HTTPException(404, "ไม่มีคำขอนี้ (no such request)")
    return request_documents(run_id)

