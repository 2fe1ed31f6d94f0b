"""`Stack`: the embedded default deployment on one machine, without Docker.

PostgreSQL (or tuned SQLite) for metadata, Airflow 3.3 (scheduler, dag-processor, triggerer,
api-server; LocalExecutor), an OpenSSH sshd playing the backup host with restic, and an SMTP
sink keeping each e-mail as a file. Everything listens on 127.0.0.1 and lives under `home`.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from email.utils import formataddr
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

from sb87.settings import DEFAULT_CONFIG_FILE, Organisation, settings
from stack import smtp_sink
from stack.airflow_config import (
    CELERY_WORKER,
    COMPONENTS,
    HEALTH_KEYS,
    SERVICE_USER,
    airflow_config_env,
    load_or_create_secrets,
    seed_passwords,
    simple_auth_users,
    write_sqlite_tuning,
)
from stack.client import ApiClient
from stack.deposited_server import DepositedServer
from stack.ports import LOOPBACK, port_in_use, resolve_ports, wait_for_port
from stack.postgres import Postgres
from stack.procs import StackError, descendants, log_tail, run_logged, spawn, terminate_groups
from stack.server_databases import ServerPostgres, broker_url, pg_server_url
from stack.sshd import Sshd

PROJECT_DB_APP_ROLE = "sb87_app"  # the login of the connection sb87_db

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DEFAULT_HOME = REPO_ROOT / ".stack"
IT_CENTRE_SENDER = formataddr(("ศูนย์เทคโนโลยีสารสนเทศ", "itc@doh.example.go.th"))


def throwaway_home(name: str) -> Path:
    """A home for a throwaway stack (tests, benchmarks), outside pytest's temporary tree: pytest makes
    that tree root-only (0700) whenever a pytest run starts, and the embedded PostgreSQL, which runs as
    its own user, must still reach its data. The caller removes it."""
    return Path(tempfile.mkdtemp(prefix=f"sb87-{name}-"))


def default_home() -> Path:
    """`$SB87_STACK_HOME`, else `<repo>/.stack` (git-ignored)."""
    return Path(os.environ.get("SB87_STACK_HOME") or DEFAULT_HOME).resolve()


def _roster_ids(config_path: str | None) -> list[str]:
    """User ids from the organisation file, via the project's own loader."""
    path = Path(config_path) if config_path else DEFAULT_CONFIG_FILE
    return [p.id for p in Organisation(json.loads(path.read_text(encoding="utf-8"))).people]


class Stack:
    """Start, use and stop the whole embedded stack rooted at `home`.

    `ports`: keys api, pg, ssh, smtp, worker_log, triggerer_log (else `SB87_*_PORT`, else defaults).
    `extra_env`: added to every Airflow process (e.g. more `AIRFLOW_CONN_*`, `SB87_CONFIG`).
    `dags_folder`: defaults to `<repo>/dags`; tests point it at a throwaway folder.
    `metadata_db`: "postgres" (default) or "sqlite"; default from `SB87_METADATA_DB`.
    `executor`: "local" (default; LocalExecutor and a private PostgreSQL) or "celery" (CeleryExecutor,
    a separate Celery worker, Redis `SB87_BROKER_URL` as the broker and databases of the stack's own
    on the PostgreSQL server `SB87_PG_SERVER`); default from `SB87_EXECUTOR`.
    """

    def __init__(
        self,
        home: Path,
        ports: dict[str, int] | None = None,
        extra_env: dict[str, str] | None = None,
        dags_folder: Path | None = None,
        metadata_db: str | None = None,
        health_timeout: float = 180.0,
        executor: str | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.ports = resolve_ports(ports)
        self.extra_env = dict(extra_env or {})
        self.dags_folder = Path(dags_folder or REPO_ROOT / "dags").resolve()
        self.plugins_folder = REPO_ROOT / "plugins"
        db = metadata_db or self.extra_env.get("SB87_METADATA_DB") or os.environ.get("SB87_METADATA_DB")
        self.metadata_db = (db or "postgres").lower()
        if self.metadata_db not in ("postgres", "sqlite"):
            raise ValueError(f"SB87_METADATA_DB must be postgres or sqlite, not {self.metadata_db!r}")
        self.executor = (executor or self.extra_env.get("SB87_EXECUTOR") or os.environ.get("SB87_EXECUTOR")
                         or "local").lower()
        if self.executor not in ("local", "celery"):
            raise ValueError(f"SB87_EXECUTOR must be local or celery, not {self.executor!r}")
        if self.executor == "celery" and self.metadata_db != "postgres":
            raise ValueError("the Celery mode keeps its metadata on PostgreSQL (SB87_METADATA_DB=postgres)")
        # The distributed mode is the production one: FAB users and roles from the roster.
        self.auth = "fab" if self.executor == "celery" else "simple"
        self.health_timeout = health_timeout
        self.airflow_home = self.home / "airflow"
        self.logs_dir = self.home / "logs"
        self.mail_dir = self.home / "mail"
        self.backup_dir = self.home / "backup"
        self.sshd = Sshd(self.home / "sshd", self.ports["ssh"])
        # The deposited servers of the inventory that live on this machine (loopback addresses): each
        # its own sshd and cron in a mount namespace of its own, its data invisible to the backup host.
        self.deposited = {
            entry["hostname"]: DepositedServer(self.home / "deposited" / entry["id"], entry["address"],
                                               self.ports["ssh"], entry.get("data_roots", ()), entry["hostname"])
            for entry in self._inventory().values() if entry.get("address", "").startswith("127.")
        }
        self.postgres: Postgres | ServerPostgres
        if self.executor == "celery":
            self.postgres = ServerPostgres(pg_server_url(), self.home)
            self.broker_url = broker_url()
        else:
            self.postgres = Postgres(self.home / "pgdata", self.ports["pg"], self.logs_dir / "postgres.log")
        self.processes: dict[str, subprocess.Popen] = {}
        self._env: dict[str, str] | None = None
        self._clients: dict[str, ApiClient] = {}
        self._started = False

    # ----------------------------------------------------------------- configuration

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['api']}"

    @property
    def ssh_client_key(self) -> Path:
        return self.sshd.client_key

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    @property
    def restic_password_file(self) -> Path:
        return self.backup_dir / "restic-password"

    def _prepare_files(self) -> None:
        for d in (self.home, self.airflow_home, self.logs_dir, self.mail_dir,
                  self.backup_dir / "repos", self.backup_dir / "scratch"):
            d.mkdir(parents=True, exist_ok=True)
        if not self.restic_password_file.exists():
            fd = os.open(self.restic_password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        self.sshd.prepare()
        if self.metadata_db == "sqlite":
            write_sqlite_tuning(self.airflow_home)

    def own_env(self) -> dict[str, str]:
        """Only the variables the stack sets (what `python -m stack env` prints)."""
        self._prepare_dirs_for_env()
        config_path = self.extra_env.get("SB87_CONFIG") or os.environ.get("SB87_CONFIG")
        if self.metadata_db == "postgres":
            conn = self.postgres.url("airflow")
        else:
            conn = f"sqlite:///{self.airflow_home / 'airflow.db'}"
        env = airflow_config_env(
            airflow_home=self.airflow_home,
            dags_folder=self.dags_folder,
            plugins_folder=self.plugins_folder,
            ports=self.ports,
            sql_alchemy_conn=conn,
            metadata_db=self.metadata_db,
            users=simple_auth_users(_roster_ids(config_path)),
            stack_secrets=load_or_create_secrets(self.home / "secrets.json"),
            celery=self._celery_settings(),
            auth=self.auth,
        )
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
        users = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        passwords = seed_passwords(self.passwords_file, [u.split(":")[0] for u in users.split(",")])
        env["AIRFLOW_CONN_SB87_AIRFLOW_API"] = json.dumps({
            "conn_type": "http", "host": LOOPBACK, "port": self.ports["api"], "schema": "http",
            "login": SERVICE_USER, "password": passwords[SERVICE_USER],
        })
        env["AIRFLOW_CONN_SB87_BACKUP_HOST"] = self.sshd.connection_json()
        env["SB87_PUSH_KEYS_FILE"] = str(self.sshd.push_authorized_keys)
        for hostname, server in self.deposited.items():
            server.prepare()
            conn_id = self._inventory()[hostname]["ssh_conn_id"]
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = server.connection_json()
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps({
            "conn_type": "smtp",
            "host": LOOPBACK,
            "port": self.ports["smtp"],
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": IT_CENTRE_SENDER,
                      "timeout": 10, "retry_limit": 1},
        })
        env["SB87_REPO_ROOT"] = str(self.backup_dir / "repos")
        env["SB87_SCRATCH_ROOT"] = str(self.backup_dir / "scratch")
        env["SB87_DROP_DIR"] = str(self.backup_dir / "restore-files")
        env["SB87_CRON_DIR"] = str(self.backup_dir / "cron.d")
        env["SB87_RESTIC_PASSWORD_FILE"] = str(self.restic_password_file)
        env["SB87_METADATA_DB"] = self.metadata_db
        env["SB87_EXECUTOR"] = self.executor
        env["SB87_STACK_HOME"] = str(self.home)
        env["SB87_DOCUMENTS_DIR"] = str(self.home / "documents")
        # The project's own database (register, deadline events): connection `sb87_db`.
        if self.metadata_db == "postgres":
            # As in production: the pipeline logs in as a role with row rights only (and on the request
            # record SELECT and INSERT); the owner migrates the schema at start (`_migrate_project_db`).
            project_db = {"conn_type": "postgres", "host": self.postgres.host, "port": self.postgres.port,
                          "login": PROJECT_DB_APP_ROLE, "schema": self.postgres.database("sb87")}
        else:
            project_db = {"conn_type": "sqlite", "host": str(self.home / "sb87.db")}
        env["AIRFLOW_CONN_SB87_DB"] = json.dumps(project_db)
        if self.auth == "fab":
            # sb87.people.accounts gives new FAB users the passwords seeded above (the same file as
            # SimpleAuthManager's), so `password()` and the service connection hold for both.
            env["SB87_INITIAL_PASSWORDS_FILE"] = str(self.passwords_file)
            env["SB87_ADMIN_USERNAME"] = "admin"
        if config_path:
            env["SB87_CONFIG"] = config_path
        env.update(self.extra_env)
        return env

    def _migrate_project_db(self, env: dict[str, str]) -> None:
        """The project database's schema, migrated by its owner; the pipeline's role gets row rights."""
        import psycopg2

        admin = psycopg2.connect(host=self.postgres.host, port=self.postgres.port, user=self.postgres.user,
                                 dbname="postgres")
        admin.autocommit = True
        try:
            admin.cursor().execute(f"DO $$ BEGIN CREATE ROLE {PROJECT_DB_APP_ROLE} LOGIN; "
                                   "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        finally:
            admin.close()
        run_logged([sys.executable, "-m", "sb87.records.schema", "upgrade", "--url", self.postgres.url("sb87"),
                    "--app-role", PROJECT_DB_APP_ROLE], self.logs_dir / "project-db-migrate.log", env, 300,
                   "python -m sb87.records.schema upgrade")

    def _celery_settings(self) -> dict[str, str] | None:
        if self.executor != "celery":
            return None
        return {"broker_url": self.broker_url, "queue": self.postgres.prefix}

    @property
    def env(self) -> dict[str, str]:
        """Full environment for any `airflow` command against this stack (os.environ + the stack's)."""
        if self._env is None:
            base = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
            self._env = base | self.own_env()
        return dict(self._env)

    def _inventory(self) -> dict[str, dict[str, Any]]:
        path = self.extra_env.get("SB87_INVENTORY_FILE") or os.environ.get("SB87_INVENTORY_FILE")
        raw = json.loads(Path(path or settings().inventory_file).read_text(encoding="utf-8"))
        return {entry["hostname"]: entry for entry in raw["servers"]}

    def deposited_server(self, hostname: str) -> DepositedServer:
        """The running deposited server of that host name (tests put and read its files through it)."""
        return self.deposited[hostname]

    def _prepare_dirs_for_env(self) -> None:
        # own_env needs the SSH keys (host key, client key path) and the secrets file
        if not self.sshd.host_key.exists():
            self.sshd.root.mkdir(parents=True, exist_ok=True)
            self.sshd.prepare()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Stack:
        """Bring everything up and wait until the API reports all components healthy.

        Raises StackError naming the component and quoting its log tail when one fails.
        Calling it on a running stack does nothing.
        """
        if self._started and all(p.poll() is None for p in self.processes.values()):
            return self
        t0 = time.monotonic()
        self._check_ports()
        self._prepare_files()
        self._env = None  # extra_env may have changed since `.env` was last read
        env = self.env
        try:
            self._start_side_services(env)
            if self.metadata_db == "postgres":
                self.postgres.start()
            airflow = str(VENV_BIN / "airflow")
            run_logged([airflow, "db", "migrate"], self.logs_dir / "db-migrate.log", env, 600,
                       "airflow db migrate")
            if self.metadata_db == "postgres":
                self._migrate_project_db(env)
            if self.auth == "fab":
                run_logged([sys.executable, "-m", "sb87.people.accounts"], self.logs_dir / "roster-accounts.log",
                           env, 300, "python -m sb87.people.accounts")
            # the pool is created while the components boot (each airflow CLI call costs seconds)
            pool = spawn(
                "pools set",
                [airflow, "pools", "set", settings().backup_pool, "2", "SB-8-7: SSH jobs on the backup host"],
                self.logs_dir / "pools.log", env,
            )
            # The api-server first: tasks report through its execution API, and a task the scheduler
            # hands out before the API listens fails at once (seen with the watch DAG's first run).
            for name in sorted(COMPONENTS, key=lambda n: n != "api-server"):
                argv = [airflow, *(a.format(**self.ports) for a in COMPONENTS[name])]
                self.processes[name] = spawn(name, argv, self.logs_dir / f"{name}.log", env, cwd=self.home)
                if name == "api-server" and not wait_for_port(self.ports["api"], 120):
                    raise StackError(f"api-server is not listening:\n{log_tail(self.logs_dir / 'api-server.log')}")
            if self.executor == "celery":
                argv = [airflow, *(a.format(concurrency=env["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
                                            queue=self.postgres.prefix) for a in CELERY_WORKER)]
                self.processes["celery-worker"] = spawn(
                    "celery-worker", argv, self.logs_dir / "celery-worker.log", env, cwd=self.home
                )
            if pool.wait(timeout=300) != 0:
                raise StackError(f"airflow pools set failed:\n{log_tail(self.logs_dir / 'pools.log')}")
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self._started = True
        self.start_seconds = time.monotonic() - t0
        return self

    def _check_ports(self) -> None:
        busy = {k: p for k, p in self.ports.items() if port_in_use(p)}
        if busy:
            raise StackError(f"ports already in use on {LOOPBACK}: {busy} (set SB87_*_PORT or pass ports=)")

    def _start_side_services(self, env: dict[str, str]) -> None:
        for server in self.deposited.values():
            server.start()
        self.processes["sshd"] = spawn("sshd", self.sshd.argv(), self.logs_dir / "sshd.log", env)
        self.processes["smtp-sink"] = spawn("smtp-sink", smtp_sink.argv(self.ports["smtp"], self.mail_dir),
                                            self.logs_dir / "smtp-sink.log", env)
        for name, key in (("sshd", "ssh"), ("smtp-sink", "smtp")):
            if not wait_for_port(self.ports[key], 20):
                raise StackError(
                    f"{name} is not listening on {LOOPBACK}:{self.ports[key]}; last lines of its log:\n"
                    f"{log_tail(self.logs_dir / f'{name}.log')}"
                )

    def restart_sshd(self) -> None:
        """Kill the backup host's sshd with every session it serves, then start it again.

        For failure tests: what a network cut or a rebooted backup host does to a running SSH step.
        """
        self.kill_and_restart("sshd")
        if not wait_for_port(self.ports["ssh"], 20):
            raise StackError(f"sshd did not come back:\n{log_tail(self.logs_dir / 'sshd.log')}")

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL one component and everything it started (a crash, not a shutdown), then start it again."""
        self.kill(name)
        self.start_component(name)

    def kill(self, name: str) -> None:
        """SIGKILL one component (sshd, smtp-sink, scheduler, …) and everything it started: a crash or an outage."""
        proc = self.processes.pop(name)
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait(10)

    def start_component(self, name: str) -> None:
        """Start one component again after `kill`, as the stack started it."""
        if name == "sshd":
            argv = self.sshd.argv()
        elif name == "smtp-sink":
            argv = smtp_sink.argv(self.ports["smtp"], self.mail_dir)
        else:
            argv = [str(VENV_BIN / "airflow"), *(a.format(**self.ports) for a in COMPONENTS[name])]
        self.processes[name] = spawn(name, argv, self.logs_dir / f"{name}.log", self.env, cwd=self.home)

    def health(self) -> dict[str, Any] | None:
        """GET /api/v2/monitor/health (no login needed), or None while the API is down."""
        try:
            resp = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return None
        return resp.json() if resp.status_code == 200 else None

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.health_timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"{name} exited with {proc.returncode} during start-up; last lines of "
                        f"{self.logs_dir / (name + '.log')}:\n{log_tail(self.logs_dir / f'{name}.log')}"
                    )
            last = self.health()
            if last and all((last.get(k) or {}).get("status") == "healthy" for k in HEALTH_KEYS):
                if self.passwords_file.exists() and self._worker_ready():
                    return
            time.sleep(0.5)
        unhealthy = [k for k in HEALTH_KEYS if not last or (last.get(k) or {}).get("status") != "healthy"]
        tails = "\n".join(
            f"--- {k}:\n{log_tail(self.logs_dir / (k.replace('_', '-') + '.log'), 20)}"
            for k in unhealthy if k != "metadatabase"
        ) or log_tail(self.logs_dir / "api-server.log")
        raise StackError(
            f"stack not healthy after {self.health_timeout:.0f}s: {json.dumps(last)}\n{tails}"
        )

    def _worker_ready(self) -> bool:
        """The Celery worker is not in the health endpoint; it logs `ready.` once it consumes its queue."""
        if self.executor != "celery":
            return True
        log = self.logs_dir / "celery-worker.log"
        return log.exists() and " ready." in log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """SIGTERM every component's process group, SIGKILL leftovers, then stop PostgreSQL."""
        order = ["api-server", "scheduler", "triggerer", "dag-processor", "smtp-sink", "sshd"]
        procs = [self.processes[n] for n in order if n in self.processes]
        procs += [p for n, p in self.processes.items() if n not in order]
        terminate_groups(procs)
        self.processes.clear()
        for server in self.deposited.values():
            server.stop()
        if self.metadata_db == "postgres":
            self.postgres.stop()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self._started = False

    def discard(self) -> None:
        """For a throwaway stack, after `stop`: drop its databases from the machine's PostgreSQL server
        (Celery mode). A private PostgreSQL keeps its data in `home`, which goes with the folder."""
        if isinstance(self.postgres, ServerPostgres):
            self.postgres.drop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- using it

    def password(self, user_id: str) -> str:
        """The generated SimpleAuthManager password of a user (written by the api-server at start)."""
        return json.loads(self.passwords_file.read_text(encoding="utf-8"))[user_id]

    def users(self) -> list[str]:
        """User ids configured in SimpleAuthManager (admin first, then the roster)."""
        users = self.own_env()["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        return [u.split(":")[0] for u in users.split(",")]

    def project_db_url(self) -> str:
        """SQLAlchemy URL of the project's own database, as the pipeline logs in (connection sb87_db)."""
        from types import SimpleNamespace

        from sb87.records.store import url_of

        conn = {"login": None, "password": None, "port": None, **json.loads(self.env["AIRFLOW_CONN_SB87_DB"])}
        return url_of(SimpleNamespace(**conn))

    def client(self, user_id: str = "admin") -> ApiClient:
        """A REST client logged in as `user_id` (one per user, token cached)."""
        if user_id not in self._clients:
            self._clients[user_id] = ApiClient(self.api_url, user_id, self.password(user_id))
        return self._clients[user_id]

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed `dag_id` without import errors; return the DAG."""
        api = self.client("admin")
        deadline = time.monotonic() + timeout
        status, body = 0, None
        while time.monotonic() < deadline:
            try:
                status, body = api.get(f"dags/{dag_id}")
            except httpx.TimeoutException as exc:
                # A just-started api-server on a loaded machine can miss one read timeout; the wait
                # has its own deadline, so it keeps asking (seen when two stacks started at once).
                status, body = 0, f"{type(exc).__name__}"
            if status == 200 and not body.get("has_import_errors"):
                return body
            time.sleep(0.5)
        _, errors = api.get("importErrors")
        raise TimeoutError(f"DAG {dag_id!r} not ready after {timeout}s (last: {status} {body}); "
                           f"import errors: {errors}")

    def _pids(self) -> set[int]:
        roots = [p.pid for p in self.processes.values() if p.poll() is None]
        if self.metadata_db == "postgres" and (pm := self.postgres.postmaster_pid()):
            roots.append(pm)
        return descendants(roots)

    def rss_bytes(self) -> int:
        """Resident memory of every stack process and their children (PostgreSQL included)."""
        total = 0
        for pid in self._pids():
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def pss_bytes(self) -> int:
        """Proportional memory (shared pages counted once) of the same processes.

        LocalExecutor forks `parallelism` idle workers at start; their RSS sums to gigabytes
        although they share nearly all pages, so PSS is the honest figure for a benchmark.
        """
        total = 0
        for pid in self._pids():
            try:
                total += psutil.Process(pid).memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def pids(self) -> set[int]:
        """Every live process of the stack now (components, their children, PostgreSQL)."""
        return self._pids()

    def describe(self) -> str:
        """Human summary without secrets: addresses, users, where the passwords are."""
        return "\n".join([
            f"Airflow UI/API : {self.api_url}   (users: {', '.join(self.users())})",
            f"passwords file : {self.passwords_file}",
            f"auth manager   : {'FAB (roster roles)' if self.auth == 'fab' else 'SimpleAuthManager'}",
            f"executor       : {self.executor}"
            + (f" (broker {self.broker_url}, queue {self.postgres.prefix})" if self.executor == "celery" else ""),
            f"metadata DB    : {self.metadata_db}"
            + (f" {self.postgres.database('airflow')} on {self.postgres.host}:{self.postgres.port}"
               if self.metadata_db == "postgres" else ""),
            f"backup host    : ssh -p {self.ports['ssh']} -i {self.ssh_client_key} "
            f"{getpass.getuser()}@{LOOPBACK}",
            f"SMTP sink      : {LOOPBACK}:{self.ports['smtp']} -> {self.mail_dir}/new/ (Maildir, a file a message)",
            f"logs           : {self.logs_dir}",
        ])
