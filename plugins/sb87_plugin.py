"""SB-8-7's Airflow plugin: readable refusals in the api-server (see `sb87.intake_rules.api_messages`),
and the operations board "งานฝากเครื่อง Server" in the UI's navigation (`sb87.board`).

Airflow imports every module of the plugins folder in each component; only the api-server uses
`fastapi_root_middlewares` (`airflow.api_fastapi.app.init_plugins` adds each with
`app.add_middleware(middleware, *args, **kwargs)`). Check it is loaded with `airflow plugins`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sb87.board import NAV_NAME, URL_PREFIX, URL_ROUTE, LazyBoardApp
from sb87.intake_rules.api_messages import DecisionAnswerMiddleware, TriggerRefusalMiddleware


class SB87Plugin(AirflowPlugin):
    name = "sb87"
    fastapi_root_middlewares = [  # noqa: RUF012 - the list attribute AirflowPlugin declares
        {"middleware": TriggerRefusalMiddleware, "args": [], "kwargs": {}, "name": "sb87 trigger refusals in words"},
        {"middleware": DecisionAnswerMiddleware, "args": [], "kwargs": {}, "name": "sb87 answers checked"},
    ]
    # The operations board (sb87.board): its app, and its page in the UI's navigation (docs/board.md).
    fastapi_apps = [{"app": LazyBoardApp(), "url_prefix": URL_PREFIX, "name": "sb87 operations board"}]  # noqa: RUF012
    external_views = [{"name": NAV_NAME, "href": f"{URL_PREFIX}/", "url_route": URL_ROUTE,  # noqa: RUF012
                       "destination": "nav", "nav_top_level": True}]
