"""The distributed mode's servers: the machine's own PostgreSQL and Redis, as a deployment has them.

The embedded default starts a private PostgreSQL (stack/postgres.py); the Celery mode instead
uses the PostgreSQL server and the Redis broker already running on the machine (127.0.0.1:5432
and :6379 here, as in production they are separate servers). Each stack gets databases of its
own on that server, named after its home, so test sessions and a demo never share state.
If a server is down, it is started with the machine's own command before anything else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack.ports import port_in_use, wait_for_port
from stack.postgres import DATABASES, create_databases
from stack.procs import StackError

DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


def _wait(host: str, port: int, what: str, timeout: float = 30) -> None:
    if not wait_for_port(port, timeout, host):
        raise StackError(f"{what} is not answering on {host}:{port}")


def ensure_postgres_server(host: str, port: int) -> None:
    """Start the machine's PostgreSQL cluster if nothing answers on host:port."""
    if port_in_use(port, host):
        return
    clusters = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not clusters:
        raise StackError(f"PostgreSQL is not running on {host}:{port} and no cluster is installed to start")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "start"],
                   check=False, capture_output=True)
    _wait(host, port, "PostgreSQL")


def ensure_redis(broker_url: str) -> None:
    """Start the machine's Redis if nothing answers at the broker's address."""
    parts = urlsplit(broker_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if port_in_use(port, host):
        return
    if (host, port) != ("127.0.0.1", 6379):
        raise StackError(f"the broker {host}:{port} is not answering (only a local Redis on 6379 is started)")
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(REDIS_START, check=False, capture_output=True)
    _wait(host, port, "Redis")


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
        ensure_postgres_server(self.host, self.port)
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


def broker_url() -> str:
    return os.environ.get("SB87_BROKER_URL", DEFAULT_BROKER_URL)


def pg_server_url() -> str:
    return os.environ.get("SB87_PG_SERVER", DEFAULT_PG_SERVER)
