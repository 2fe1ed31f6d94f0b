"""The distributed mode's servers: the machine's own PostgreSQL and Redis, as a deployment has them.

The embedded default starts a private PostgreSQL (stack/postgres.py); the Celery mode instead
uses the PostgreSQL server and the Redis broker already running on the machine (127.0.0.1:5432
and :6379 here, as in production they are separate servers). Each stack gets databases of its
own on that server, named after its home, so test sessions and a demo never share state.
The set-up (scripts/machine_services.sh) starts a server that is down; the stack only checks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack.ports import port_in_use
from stack.postgres import DATABASES, create_databases
from stack.procs import StackError

DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


def require_server(host: str, port: int, what: str) -> None:
    """The machine's servers are started by the set-up (scripts/machine_services.sh), not by the product."""
    if not port_in_use(port, host):
        raise StackError(f"{what} is not answering on {host}:{port}: run scripts/machine_services.sh first")


class ServerPostgres:
    """Databases `<prefix>_airflow` and `<prefix>_sb87` on an existing PostgreSQL server.

    Same surface as `stack.postgres.Postgres` (url, start, stop, port, postmaster_pid), so the
    stack uses either without caring which; `drop()` removes the databases for good.
    """

    def __init__(self, server_url: str, home: Path) -> None:
        parts = urlsplit(server_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.prefix = "sb87_" + hashlib.sha1(str(home).encode(), usedforsecurity=False).hexdigest()[:10]

    def database(self, logical: str) -> str:
        return f"{self.prefix}_{logical}"

    def url(self, logical: str = "airflow") -> str:
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database(logical)}"

    def postmaster_pid(self) -> int | None:
        return None  # the machine's server is not part of the stack's memory

    def _admin(self) -> Any:  # a psycopg2 connection (the driver is imported lazily)
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        return conn

    def start(self) -> None:
        require_server(self.host, self.port, "PostgreSQL")
        create_databases(self.host, self.port, self.user, [self.database(logical) for logical in DATABASES])

    def stop(self) -> None:
        """The server is the machine's: it keeps running, and the databases stay for the next start."""

    def drop(self) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                for logical in DATABASES:
                    cur.execute(f'DROP DATABASE IF EXISTS "{self.database(logical)}" WITH (FORCE)')
        finally:
            conn.close()


@contextlib.contextmanager
def scratch_database(prefix: str, server_url: str = DEFAULT_PG_SERVER) -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL server (`<prefix>_<random>`), for tests: its
    SQLAlchemy URL, then dropped (open connections too) on the way out."""
    server = ServerPostgres(server_url, Path("."))
    require_server(server.host, server.port, "PostgreSQL")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_databases(server.host, server.port, server.user, [name])
    try:
        yield f"postgresql+psycopg2://{server.user}@{server.host}:{server.port}/{name}"
    finally:
        conn = server._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


def broker_url() -> str:
    return os.environ.get("SB87_BROKER_URL", DEFAULT_BROKER_URL)


def pg_server_url() -> str:
    return os.environ.get("SB87_PG_SERVER", DEFAULT_PG_SERVER)
