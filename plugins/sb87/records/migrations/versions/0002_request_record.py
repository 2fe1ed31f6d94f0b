"""The request's record: append-only, enforced by the database itself.

Triggers refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) for every role, the owner included,
and PUBLIC loses those rights; `sb87.records.schema.grant_app_role` gives the application role
SELECT and INSERT only, so it cannot drop the triggers either (only the table's owner may).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REFUSAL = "sb87_request_record is append-only: its rows are never changed or removed"


def upgrade() -> None:
    op.create_table(
        "sb87_request_record",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("entry", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("capacity", sa.String(500)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "entry", name="sb87_request_record_once"),
    )
    op.create_index("sb87_request_record_kind", "sb87_request_record", ["kind", "run_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION sb87_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$
        """)
        op.execute("CREATE TRIGGER sb87_request_record_no_change BEFORE UPDATE OR DELETE ON sb87_request_record "
                   "FOR EACH ROW EXECUTE FUNCTION sb87_refuse_change()")
        op.execute("CREATE TRIGGER sb87_request_record_no_truncate BEFORE TRUNCATE ON sb87_request_record "
                   "FOR EACH STATEMENT EXECUTE FUNCTION sb87_refuse_change()")
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON sb87_request_record FROM PUBLIC")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER sb87_request_record_no_{event.lower()} BEFORE {event} ON sb87_request_record "
                       f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")
