"""The first release's schema (made by `create_all` before migrations): create what is missing.

That release created a table the first time a process that imported its module opened the
database, so a database of it may hold any subset of these tables. This revision creates only the
missing ones and leaves the others, and their rows, as they are. The definitions are frozen copies:
later revisions change the schema, never this file.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

meta = sa.MetaData()
tz = sa.DateTime(timezone=True)

sa.Table(
    "sb87_step_events", meta,
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("step", sa.String(50), nullable=False),
    sa.Column("level", sa.String(100), nullable=False),
    sa.Column("step_started_at", tz, nullable=False),
    sa.Column("due_at", tz, nullable=False),
    sa.Column("fired_at", tz, nullable=False),
    sa.Column("sent_at", tz),
    sa.Column("recipients", sa.String(1000), nullable=False),
    sa.UniqueConstraint("run_id", "step", "level", name="sb87_step_events_once"),
)
sa.Table(
    "sb87_step_summary", meta,
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("step", sa.String(50), nullable=False),
    sa.Column("started_at", tz),
    sa.Column("ended_at", tz),
    sa.Column("due_at", tz),
    sa.Column("working_days_used", sa.Float),
    sa.Column("met", sa.String(10)),
    sa.UniqueConstraint("run_id", "step", name="sb87_step_summary_once"),
)
sa.Table(
    "sb87_register_counters", meta,
    sa.Column("year_be", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("last_number", sa.Integer, nullable=False),
    sa.UniqueConstraint("year_be", "kind", name="sb87_register_counters_key"),
)
sa.Table(
    "sb87_register", meta,
    sa.Column("year_be", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("registered_at", tz, nullable=False),
    sa.UniqueConstraint("year_be", "kind", "number", name="sb87_register_number_once"),
    sa.UniqueConstraint("run_id", "kind", name="sb87_register_run_once"),
)
sa.Table(
    "sb87_assignments", meta,
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.Column("ordered_by", sa.String(100), nullable=False),
    sa.Column("ordered_at", tz, nullable=False),
    sa.UniqueConstraint("run_id", "user_id", name="sb87_assignments_once"),
)
sa.Table(
    "sb87_outbox", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("notice_key", sa.String(250), nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("message_id", sa.String(250), nullable=False),
    sa.Column("conn_id", sa.String(250), nullable=False),
    sa.Column("mail_from", sa.String(320), nullable=False),
    sa.Column("sender", sa.String(500), nullable=False),
    sa.Column("subject", sa.String(1000), nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("pending", sa.Text, nullable=False),
    sa.Column("delivered", sa.Text, nullable=False),
    sa.Column("refused", sa.Text, nullable=False),
    sa.Column("message", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(1000)),
    sa.Column("created_at", tz, nullable=False),
    sa.Column("claimed_until", tz),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("sent_at", tz),
    sa.UniqueConstraint("run_id", "notice_key", name="sb87_outbox_once"),
    sa.UniqueConstraint("message_id", name="sb87_outbox_message_id"),
    sa.Index("sb87_outbox_due", "state", "claimed_until"),
)
sa.Table(
    "sb87_backup_policies", meta,
    sa.Column("server_id", sa.String(64), nullable=False),
    sa.Column("hostname", sa.String(253), nullable=False),
    sa.Column("agency", sa.String(300), nullable=False),
    sa.Column("ssh_conn_id", sa.String(250), nullable=False),
    sa.Column("schedule", sa.String(40), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("created_at", tz, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("removed_at", tz),
    sa.UniqueConstraint("server_id", name="sb87_backup_policies_server"),
)
sa.Table(
    "sb87_freshness_checks", meta,
    sa.Column("checked_at", tz, nullable=False),
    sa.Column("server_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("last_snapshot_at", tz),
    sa.Column("last_exit", sa.Integer),
    sa.Column("due_at", tz),
    sa.Column("detail", sa.String(1000), nullable=False),
)
sa.Table(
    "sb87_freshness_incidents", meta,
    sa.Column("incident_key", sa.String(250), nullable=False),
    sa.Column("server_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("opened_at", tz, nullable=False),
    sa.Column("recovered_at", tz),
    sa.UniqueConstraint("incident_key", name="sb87_freshness_incidents_key"),
)


def upgrade() -> None:
    meta.create_all(op.get_bind(), checkfirst=True)
