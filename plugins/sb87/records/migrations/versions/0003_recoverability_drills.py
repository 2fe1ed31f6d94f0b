"""Recoverability drills: each drill's result, and its incidents (`sb87.backup.drill`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "sb87_drills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("finished_at", tz, nullable=False),
        sa.Column("snapshot_id", sa.String(64)),
        sa.Column("snapshot_at", tz),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("verified", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("mismatches", sa.Integer, nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("restore_seconds", sa.Float),
        sa.Column("throughput_bytes_per_second", sa.Float),
        sa.Column("restore_size_bytes", sa.BigInteger),
        sa.Column("estimated_full_restore_seconds", sa.Float),
        sa.Column("check_subset", sa.String(20)),
        sa.Column("check_ok", sa.Boolean),
        sa.Column("detail", sa.String(2000), nullable=False),
    )
    op.create_table(
        "sb87_drill_incidents",
        sa.Column("incident_key", sa.String(250), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_at", tz, nullable=False),
        sa.Column("recovered_at", tz),
        sa.UniqueConstraint("incident_key", name="sb87_drill_incidents_key"),
    )
