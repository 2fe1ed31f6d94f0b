"""SB-8-7's Airflow plugin: readable refusals in the api-server (see `sb87.intake_rules.api_messages`).

Airflow imports every module of the plugins folder in each component; only the api-server uses
`fastapi_root_middlewares` (`airflow.api_fastapi.app.init_plugins` adds each with
`app.add_middleware(middleware, *args, **kwargs)`). Check it is loaded with `airflow plugins`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sb87.intake_rules.api_messages import DecisionAnswerMiddleware, TriggerRefusalMiddleware


class SB87Plugin(AirflowPlugin):
    name = "sb87"
    fastapi_root_middlewares = [  # noqa: RUF012 - the list attribute AirflowPlugin declares
        {"middleware": TriggerRefusalMiddleware, "args": [], "kwargs": {}, "name": "sb87 trigger refusals in words"},
        {"middleware": DecisionAnswerMiddleware, "args": [], "kwargs": {}, "name": "sb87 answers checked"},
    ]
