"""The project database's schema: Alembic migrations, the upgrade from the previous release, and the
request record that nobody can change or remove (`sb87.records.schema`, `sb87.records.request_record`)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

import sb87.backup.drill
import sb87.backup.freshness  # noqa: F401 - its tables are part of the schema
from sb87.records import request_record, schema, store

PREVIOUS_RELEASE = Path(__file__).parent / "data" / "project_db_release_d884b30.sql"
TABLES = ("sb87_step_events", "sb87_step_summary", "sb87_register_counters", "sb87_register", "sb87_assignments",
          "sb87_outbox", "sb87_backup_policies", "sb87_freshness_checks", "sb87_freshness_incidents")


def admin() -> psycopg2.extensions.connection:
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    return connection


@pytest.fixture
def fresh_pg(machine_postgres: str) -> Iterator[str]:
    """An empty database of its own on the machine's PostgreSQL."""
    name = f"sb87_schema_{uuid.uuid4().hex[:10]}"
    a = admin()
    a.cursor().execute(f'CREATE DATABASE "{name}"')
    a.close()
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        yield url
    finally:
        store.engine.cache_clear()
        a = admin()
        a.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        a.close()


def row_counts(url: str) -> dict[str, int]:
    with create_engine(url).connect() as db:
        return {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}  # noqa: S608 - fixed names


def test_a_database_of_the_previous_release_is_upgraded_and_keeps_every_row(fresh_pg: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres",
                    "-d", fresh_pg.rsplit("/", 1)[1], "-f", str(PREVIOUS_RELEASE)], check=True, capture_output=True)
    before = row_counts(fresh_pg)
    assert before["sb87_register"] == 3 and before["sb87_backup_policies"] == 1

    eng = store.engine(fresh_pg)

    assert row_counts(fresh_pg) == before
    with eng.connect() as db:
        assert schema.current(db) == schema.head()
    assert "sb87_request_record" in inspect(eng).get_table_names()
    # The register goes on from the numbers the previous release handed out.
    run = "manual__2026-12-04T09:00:00+00:00"
    assert store.register_document(eng, run, "in", "ขอ Restore File")["number"] == 3


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_tables_in_the_code_are_exactly_what_the_migrations_make(backend: str, request: pytest.FixtureRequest,
                                                                       tmp_path: Path) -> None:
    url = request.getfixturevalue("fresh_pg") if backend == "postgresql" else f"sqlite:///{tmp_path / 'sb87.db'}"
    eng = store.engine(url)
    with eng.connect() as db:
        differences = compare_metadata(MigrationContext.configure(db), store.metadata)
    assert differences == [], f"a table changed without a migration in sb87/records/migrations: {differences}"


def test_the_application_role_can_add_to_the_request_record_but_never_change_or_remove_it(fresh_pg: str) -> None:
    role = f"sb87_app_{uuid.uuid4().hex[:8]}"
    a = admin()
    a.cursor().execute(f"CREATE ROLE {role} LOGIN")
    try:
        owner = store.engine(fresh_pg)
        schema.grant_app_role(owner, role)
        app = create_engine(fresh_pg.replace("postgres@", f"{role}@"))
        run = "manual__2026-12-04T10:00:00+00:00"
        assert request_record.append(app, run, "filed", request_record.FILED, {"request": {"memo_no": "ทล 0801/1"}})
        assert not request_record.append(app, run, "filed", request_record.FILED, {"request": {"memo_no": "forged"}})

        refusals = {}
        for statement in ("UPDATE sb87_request_record SET actor = 'someone else'",
                          "DELETE FROM sb87_request_record",
                          "TRUNCATE sb87_request_record",
                          "ALTER TABLE sb87_request_record DISABLE TRIGGER sb87_request_record_no_change",
                          "DROP TABLE sb87_request_record"):
            with pytest.raises(DBAPIError) as refused, app.begin() as db:
                db.execute(text(statement))
            refusals[statement.split()[0]] = str(refused.value.orig)
        assert all("permission denied" in m or "must be owner" in m for m in refusals.values()), refusals
        # Even the owner (here a superuser) cannot change a row: the database's trigger refuses it.
        with pytest.raises(DBAPIError, match="append-only"), owner.begin() as db:
            db.execute(text("UPDATE sb87_request_record SET actor = 'someone else'"))
        assert [e["detail"] for e in request_record.entries(app, run)] == [{"request": {"memo_no": "ทล 0801/1"}}]
    finally:
        a.cursor().execute(f'DROP DATABASE IF EXISTS "{fresh_pg.rsplit("/", 1)[1]}" WITH (FORCE)')
        a.cursor().execute(f"DROP ROLE IF EXISTS {role}")
        a.close()


def test_the_request_record_on_sqlite_refuses_changes_too(tmp_path: Path) -> None:
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    request_record.append(eng, "run-1", "outcome", request_record.OUTCOME, {"outcome": "completed"})
    for statement in ("UPDATE sb87_request_record SET actor = 'x'", "DELETE FROM sb87_request_record"):
        with pytest.raises(DBAPIError, match="append-only"), eng.begin() as db:
            db.execute(text(statement))
    assert request_record.entries(eng, "run-1")[0]["detail"] == {"outcome": "completed"}


def test_processes_that_open_a_fresh_database_at_once_migrate_it_once(fresh_pg: str) -> None:
    code = "import sys; from sb87.records import store; store.engine(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, fresh_pg], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with create_engine(fresh_pg).connect() as db:
        assert db.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert schema.current(db) == schema.head()


def test_the_written_head_is_alembics_and_a_migrated_database_is_used_without_importing_alembic(
        tmp_path: Path) -> None:
    """`schema.HEAD` is what Alembic reads from the migration files; a process opening a database already
    at HEAD (every task, the DAG's parse) does not import Alembic (0.59 s of mako and pygments)."""
    assert schema.HEAD == schema.head()
    url = f"sqlite:///{tmp_path / 'sb87.db'}"
    store.engine(url)  # migrates (imports Alembic) in this process
    probe = ("import sys; from sb87.records import store; store.engine(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    out = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
