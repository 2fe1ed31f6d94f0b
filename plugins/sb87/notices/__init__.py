"""E-mail notices: Jinja-rendered Thai messages, queued in the outbox and sent at most once each.

Tasks call `notices.send_notice_once` (`sb87.notices.outbox.send_notice_once`). It is resolved on first
use rather than imported with the package: the outbox with its SMTP, e-mail and database modules took
8 ms of every parse of the request DAG, whose step modules only need it when a task runs
(bench/parse_time.py).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "send_notice_once":
        from sb87.notices.outbox import send_notice_once

        return send_notice_once
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
