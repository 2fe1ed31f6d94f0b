"""The project database's schema, changed only by the Alembic migrations in `migrations/versions/`.

Every process brings the database to the newest revision the first time it opens it (`upgrade`,
under a PostgreSQL advisory lock, so concurrent tasks of a fresh deployment migrate once). A
database the first release made with `create_all` (no `alembic_version` table) is taken up by
revision 0001, which creates only the tables it lacks and keeps every row.

Production separates two PostgreSQL roles: the owner runs the migrations, the application role
(`sb87_db`'s login) gets only row rights, and on the request record only SELECT and INSERT
(`grant_app_role`). As a command, run by the owner at each deployment (docker-compose.yaml's
`airflow-init` does), the owner's URL in `SB87_DB_OWNER_URL` so no password is on a command line:

    python -m sb87.records.schema upgrade --app-role sb87_app

With `SB87_DB_APP_PASSWORD` set, the application role is created (or its password set) first.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ProgrammingError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest revision in migrations/versions/ (test_project_db_schema holds it to Alembic's own answer).
#: Written here so that a process whose database is already there never imports Alembic: importing it
#: (mako, pygments) took 0.59 s of the request DAG's 0.58 s parse and of every task's first database use
#: (python -X importtime, 2026-12-05). Alembic is imported only to migrate.
HEAD = "0003"
LOCK_KEY = 870_870_087  # pg_advisory_xact_lock key: one migrating process at a time
APPEND_ONLY_TABLES = ("sb87_request_record",)

log = logging.getLogger(__name__)
# Alembic says "Context impl …" at INFO each time a process looks at the revision: that line would open
# every task log that first touches the database (and the stdout of every command). `upgrade` logs
# what it changes itself.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # see HEAD

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision as Alembic reads it from the migration files."""
    from alembic.script import ScriptDirectory  # see HEAD

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> str | None:
    """The database's revision, read without Alembic; None before the first migration."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(eng: Engine) -> None:
    """Bring the database to the newest revision (nothing to do when it is there already)."""
    with eng.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        before = current(connection)
        if before == HEAD:
            return
        from alembic import command  # see HEAD

        log.info("project database: upgrading the schema from revision %s to %s", before, HEAD)
        try:
            command.upgrade(alembic_config(connection), "head")
        except ProgrammingError as err:
            raise RuntimeError(
                "the project database needs its schema upgraded and this role may not do it: run "
                "`python -m sb87.records.schema upgrade --url <owner's URL> --app-role <sb87_db's login>` "
                f"as the database owner ({err.orig})"
            ) from err


def grant_app_role(eng: Engine, role: str) -> None:
    """Row rights for the application role; on the append-only tables, reading and adding only."""
    with eng.begin() as connection:
        quoted = connection.dialect.identifier_preparer.quote(role)
        connection.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"))
        connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
        for table in APPEND_ONLY_TABLES:
            connection.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {quoted}"))


def ensure_login_role(eng: Engine, role: str, password: str) -> None:
    """Create the login role `role` with `password`, or set the password of the existing one."""
    with eng.begin() as connection:
        quoted = connection.dialect.identifier_preparer.quote(role)
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        # A role's password cannot be a bound parameter in DDL; quote it as a literal.
        literal = "'" + password.replace("'", "''") + "'"
        connection.execute(text(f"{'ALTER' if exists else 'CREATE'} ROLE {quoted} LOGIN PASSWORD {literal}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sb87.records.schema", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["upgrade", "current"])
    parser.add_argument("--url", default=os.environ.get("SB87_DB_OWNER_URL"),
                        help="SQLAlchemy URL of the project database, as its owner (default: $SB87_DB_OWNER_URL)")
    parser.add_argument("--app-role", help="PostgreSQL role of the connection sb87_db (gets row rights only)")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set SB87_DB_OWNER_URL")
    eng = create_engine(args.url, future=True)
    if args.action == "upgrade":
        upgrade(eng)
        if args.app_role:
            if os.environ.get("SB87_DB_APP_PASSWORD"):
                ensure_login_role(eng, args.app_role, os.environ["SB87_DB_APP_PASSWORD"])
            grant_app_role(eng, args.app_role)
    with eng.connect() as connection:
        print(f"project database at revision {current(connection)} (newest: {head()})")


if __name__ == "__main__":
    main()
