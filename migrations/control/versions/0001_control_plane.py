"""Control-plane schema: regions, leases, probes, intents, failovers, drills, audit.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Enumerated values are spelled out here rather than imported, so this revision keeps creating
the same schema whatever the application code says later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB()
TIMESTAMPTZ = sa.DateTime(timezone=True)


def one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_regions"),
        sa.CheckConstraint(
            one_of("role", "primary", "standby", "fenced", "recovering"), name="ck_regions_role"
        ),
        sa.CheckConstraint("epoch >= 0", name="ck_regions_epoch_non_negative"),
    )
    # At most one primary: the database refuses a split brain even if a controller errs.
    op.create_index(
        "uq_regions_one_primary",
        "regions",
        ["role"],
        unique=True,
        postgresql_where=sa.text("role = 'primary'"),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("fencing_token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("acquired_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
        sa.CheckConstraint("fencing_token >= 1", name="ck_leases_fencing_token_positive"),
    )

    op.create_table(
        "probe_observations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("vantage", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("observed_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_probe_observations"),
        sa.CheckConstraint(
            "latency_ms IS NULL OR latency_ms >= 0",
            name="ck_probe_observations_latency_non_negative",
        ),
    )
    op.create_index(
        "ix_probe_observations_region_vantage_observed_at",
        "probe_observations",
        ["region", "vantage", "observed_at"],
    )

    op.create_table(
        "intents",
        sa.Column("id", UUID, server_default=sa.func.gen_random_uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_intents"),
        sa.UniqueConstraint("idempotency_key", name="uq_intents_idempotency_key"),
        sa.CheckConstraint(
            one_of("status", "pending", "running", "succeeded", "failed", "rejected", "cancelled"),
            name="ck_intents_status",
        ),
    )

    op.create_table(
        "failovers",
        sa.Column("id", UUID, server_default=sa.func.gen_random_uuid(), nullable=False),
        sa.Column("intent_id", UUID, nullable=True),
        sa.Column("source_region", sa.Text(), nullable=False),
        sa.Column("target_region", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("current_step", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_failovers"),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["intents.id"], name="fk_failovers_intent_id_intents"
        ),
        sa.ForeignKeyConstraint(
            ["source_region"], ["regions.name"], name="fk_failovers_source_region_regions"
        ),
        sa.ForeignKeyConstraint(
            ["target_region"], ["regions.name"], name="fk_failovers_target_region_regions"
        ),
        sa.CheckConstraint(
            one_of("state", "pending", "running", "succeeded", "failed", "aborted"),
            name="ck_failovers_state",
        ),
        sa.CheckConstraint("source_region <> target_region", name="ck_failovers_distinct_regions"),
    )

    op.create_table(
        "failover_steps",
        sa.Column("failover_id", UUID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=True),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("failover_id", "seq", name="pk_failover_steps"),
        sa.ForeignKeyConstraint(
            ["failover_id"],
            ["failovers.id"],
            name="fk_failover_steps_failover_id_failovers",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            one_of("status", "pending", "running", "succeeded", "failed", "skipped"),
            name="ck_failover_steps_status",
        ),
        sa.CheckConstraint("seq >= 0", name="ck_failover_steps_seq_non_negative"),
    )

    op.create_table(
        "drills",
        sa.Column("id", UUID, server_default=sa.func.gen_random_uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("target_region", sa.Text(), nullable=False),
        sa.Column("objectives", JSONB, server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("failover_id", UUID, nullable=True),
        sa.Column("status", sa.Text(), server_default="scheduled", nullable=False),
        sa.Column("rto_seconds", sa.Float(), nullable=True),
        sa.Column("rpo_seconds", sa.Float(), nullable=True),
        sa.Column("report", JSONB, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drills"),
        sa.ForeignKeyConstraint(
            ["target_region"], ["regions.name"], name="fk_drills_target_region_regions"
        ),
        sa.ForeignKeyConstraint(
            ["failover_id"], ["failovers.id"], name="fk_drills_failover_id_failovers"
        ),
        sa.CheckConstraint(
            one_of("status", "scheduled", "running", "passed", "failed", "aborted"),
            name="ck_drills_status",
        ),
        sa.CheckConstraint(
            "rto_seconds IS NULL OR rto_seconds >= 0", name="ck_drills_rto_non_negative"
        ),
        sa.CheckConstraint(
            "rpo_seconds IS NULL OR rpo_seconds >= 0", name="ck_drills_rpo_non_negative"
        ),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ts", TIMESTAMPTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("before", JSONB, nullable=True),
        sa.Column("after", JSONB, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_region_id", "audit_events", ["region", "id"])


def downgrade() -> None:
    # Reverse dependency order; dropping a table drops its indexes and constraints.
    for table in (
        "audit_events",
        "drills",
        "failover_steps",
        "failovers",
        "intents",
        "probe_observations",
        "leases",
        "regions",
    ):
        op.drop_table(table)
