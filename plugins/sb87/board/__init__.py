"""The operations board inside the Airflow UI (issue 23): `data` reads and computes, `app` serves.

This module stays light on purpose: Airflow imports the plugin module (`plugins/sb87_plugin.py`) in
every component, task processes included, and only the api-server ever serves the board. The plugin
registers `LazyBoardApp`, which builds the FastAPI app (`sb87.board.app.create_app`, with Airflow's
security dependencies and the project's readers) on its first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

URL_PREFIX = "/sb87-board"
URL_ROUTE = "sb87-board"  # the UI shows the page at /plugin/sb87-board
NAV_NAME = "งานฝากเครื่อง Server"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class LazyBoardApp:
    """An ASGI app that builds the board's FastAPI app when the api-server first routes a request to it."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if self._app is None:
            from sb87.board.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)
