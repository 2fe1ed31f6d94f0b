"""Airflow's side of the stack: configuration (as environment variables), secrets, components.

All configuration goes through `AIRFLOW__SECTION__KEY` variables rather than airflow.cfg so
that one dict (`Stack.env`) is the whole truth for every process and every CLI call.
Option names are taken from airflow/config_templates/config.yml of Airflow 3.3.2.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

#: component name -> command line after `airflow`. Log serving is skipped: on one machine the
#: api-server reads task logs from the local folder, and `serve_logs` would bind all interfaces.
COMPONENTS: dict[str, list[str]] = {
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", "{api}"],
}

#: the Celery mode's extra component; one worker process tree takes every task of the stack
CELERY_WORKER = ["celery", "worker", "--skip-serve-logs", "--concurrency", "{concurrency}",
                 "--celery-hostname", "{queue}@%h"]

#: what /api/v2/monitor/health must report healthy
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

#: the production auth manager (FAB, decisions bound to roster user names): plugins/sb87/people/auth.py
FAB_AUTH_MANAGER = "sb87.people.auth.RosterFabAuthManager"
SIMPLE_AUTH_MANAGER = "sb87.people.auth.RosterSimpleAuthManager"

SQLITE_TUNING_MODULE = "sb87_sqlite_tuning"
#: the account the pipeline's own REST calls (run notes) use, through the `sb87_airflow_api` connection
SERVICE_USER = "sb87_service"


def seed_passwords(path: Path, usernames: list[str]) -> dict[str, str]:
    """Give every user a random password before the api-server starts.

    SimpleAuthManager keeps passwords it finds in its file and prints the ones it generates into
    its log; seeding them keeps passwords out of logs and lets the service account's password go
    into a connection before any process starts. The file is mode 600.
    """
    passwords = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    missing = [u for u in usernames if u not in passwords]
    if missing or not path.exists():
        passwords.update({u: secrets.token_urlsafe(16) for u in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(passwords, fh)
    return passwords


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """Fernet key, JWT secret and API secret key: made once per home, shared by all processes.

    Every component must agree on these (tokens minted by the api-server are checked by the
    execution API, connections are encrypted with the Fernet key), so they persist in a
    mode-600 file rather than being regenerated per process as `airflow standalone` would.
    """
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    from cryptography.fernet import Fernet

    values = {
        "fernet_key": Fernet.generate_key().decode(),
        "jwt_secret": secrets.token_urlsafe(48),
        "api_secret_key": secrets.token_urlsafe(48),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return values


def write_sqlite_tuning(airflow_home: Path) -> None:
    """Connect args for the SQLite variant; `$AIRFLOW_HOME/config` is on sys.path before the ORM starts.

    `sql_alchemy_connect_args` is an import path to a dict, not a literal. WAL mode is already
    switched on by Airflow itself for SQLite (airflow/utils/orm_event_handlers.py).
    """
    cfg = airflow_home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / f"{SQLITE_TUNING_MODULE}.py").write_text(
        '"""Written by stack/airflow_config.py: 60 s busy timeout for the SQLite metadata database."""\n'
        "CONNECT_ARGS = {'timeout': 60, 'check_same_thread': False}\n"
        "ASYNC_CONNECT_ARGS = {'timeout': 60}\n",
        encoding="utf-8",
    )


def simple_auth_users(user_ids: list[str]) -> str:
    """`[core] simple_auth_manager_users`: admin plus every roster person with the `user` role."""
    for uid in user_ids:
        if any(c in uid for c in ":,| ") or not uid:
            raise ValueError(f"user id {uid!r} cannot be used with SimpleAuthManager")
    people = [f"{uid}:user" for uid in user_ids if uid not in ("admin", SERVICE_USER)]
    return ",".join(["admin:admin", f"{SERVICE_USER}:op", *people])


def airflow_config_env(
    *,
    airflow_home: Path,
    dags_folder: Path,
    plugins_folder: Path,
    ports: dict[str, int],
    sql_alchemy_conn: str,
    metadata_db: str,
    users: str,
    stack_secrets: dict[str, str],
    celery: dict[str, str] | None = None,
    auth: str = "simple",
) -> dict[str, str]:
    """The `AIRFLOW__*` variables shared by all components and CLI calls.

    `auth`: "simple" (SimpleAuthManager, users from `users`) or "fab" (the production auth manager,
    `sb87.people.auth.RosterFabAuthManager`; its users are made by `python -m sb87.people.accounts`).
    """
    api = f"http://127.0.0.1:{ports['api']}"
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # As in production (docker-compose.yaml): naive times are Thai time (docs/board.md).
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Bangkok",
        # Measured with bench/burst.py on 2 cores: 16 task processes starving one api-server worker made
        # REST calls time out under a burst; 8 processes and 2 api-server workers kept it responsive.
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__API__WORKERS": "2",
        "AIRFLOW__CORE__FERNET_KEY": stack_secrets["fernet_key"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        # SimpleAuthManager, except that only an admin may write task states or XComs (plugins/sb87/people/auth.py).
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
            airflow_home / "simple_auth_manager_passwords.json.generated"
        ),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports["api"]),
        "AIRFLOW__API__SECRET_KEY": stack_secrets["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": stack_secrets["jwt_secret"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        # New DAG files show up within seconds instead of the default 5 minutes. A known file is
        # re-parsed every 30 s, the default, as in the deployment: measured on an idle stack, every
        # 10 s made the dag-processor take 0.17 of a core instead of 0.06, parsing unchanged files.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_log"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["triggerer_log"]),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }
    if celery:
        # A queue of the stack's own: another stack (or a test session) on the same Redis never
        # takes this one's tasks. Results go to the metadata database, as in the official compose file.
        env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
        env["AIRFLOW__CELERY__BROKER_URL"] = celery["broker_url"]
        # The driver stays in the URL: to celery's database backend a bare postgresql:// means psycopg 3.
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + sql_alchemy_conn
        env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] = celery["queue"]
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = env["AIRFLOW__CORE__PARALLELISM"]
    if auth == "fab":
        env["AIRFLOW__CORE__AUTH_MANAGER"] = FAB_AUTH_MANAGER
    if metadata_db == "postgres":
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE"] = "5"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW"] = "10"
    else:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = f"{SQLITE_TUNING_MODULE}.CONNECT_ARGS"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = (
            f"{SQLITE_TUNING_MODULE}.ASYNC_CONNECT_ARGS"
        )
    return env
