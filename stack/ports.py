"""Port assignment for the embedded stack.

Every listener binds 127.0.0.1 and every port can be moved, because the usual numbers
(8080, 8793, 8794, 5432) are often taken on a shared machine (brief §4).
"""

from __future__ import annotations

import os
import socket
from contextlib import closing

#: component key -> (environment variable, default port)
PORT_VARS: dict[str, tuple[str, int]] = {
    "api": ("SB87_API_PORT", 8080),
    "pg": ("SB87_PG_PORT", 15432),
    "ssh": ("SB87_SSH_PORT", 2222),
    "smtp": ("SB87_SMTP_PORT", 2525),
    "worker_log": ("SB87_WORKER_LOG_PORT", 8793),
    "triggerer_log": ("SB87_TRIGGERER_LOG_PORT", 8794),
}

LOOPBACK = "127.0.0.1"


def resolve_ports(ports: dict[str, int] | None = None) -> dict[str, int]:
    """Ports for every component: explicit `ports` first, then `SB87_*_PORT`, then the default."""
    given = dict(ports or {})
    unknown = set(given) - set(PORT_VARS)
    if unknown:
        raise ValueError(f"unknown port keys {sorted(unknown)}; known: {sorted(PORT_VARS)}")
    return {
        key: int(given.get(key) or os.environ.get(var) or default)
        for key, (var, default) in PORT_VARS.items()
    }


def free_ports() -> dict[str, int]:
    """A set of currently free loopback ports, one per component (for tests running side by side).

    All sockets are held open together so the kernel hands out distinct numbers.
    """
    socks = []
    try:
        for _ in PORT_VARS:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return {key: s.getsockname()[1] for key, s in zip(PORT_VARS, socks, strict=True)}
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when something already accepts connections on host:port."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """Poll until host:port accepts a TCP connection; False on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port, host):
            return True
        time.sleep(0.1)
    return False
