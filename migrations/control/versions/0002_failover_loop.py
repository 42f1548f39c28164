"""Failover loop: what the controller's ControlStore records beyond revision 0001.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-28

- probe_observations: the role and epoch a region's database reported; an index on time
  (the loop reads every observation since a moment).
- intents: the request in columns, the reason for the current status, a kind check.
- failovers: trigger, epoch, actor, dry run, the drill it serves; its id is its intent's id;
  at most one pending or running failover (two leaders in a race cannot both start one).
- failover_steps: attempts and the step's figures.
- drills: how the fault is made (fence | external), who asked and why, the intent that runs
  it, and for an armed ("external") drill its idempotency key and request.
- controller_status: the loop's last decision and the highest fencing token that has acted.

Columns added NOT NULL without a lasting default get a temporary one, so the revision also
applies to a table that already holds rows. Enumerated values are spelled out, as in 0001.
Check constraints are named through ``op.f()``, so the name given is the name stored: the
metadata's naming convention would otherwise prefix it again (0001's checks are stored as
``ck_<table>_ck_<table>_<name>``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB()
TIMESTAMPTZ = sa.DateTime(timezone=True)
FALSE = sa.text("false")


def one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.add_column("probe_observations", sa.Column("role", sa.Text(), nullable=True))
    op.add_column("probe_observations", sa.Column("epoch", sa.BigInteger(), nullable=True))
    op.create_index("ix_probe_observations_observed_at", "probe_observations", ["observed_at"])

    op.add_column("intents", sa.Column("target", sa.Text(), nullable=True))
    op.add_column("intents", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column(
        "intents", sa.Column("dry_run", sa.Boolean(), server_default=FALSE, nullable=False)
    )
    op.add_column(
        "intents", sa.Column("status_reason", sa.Text(), server_default="", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_intents_kind"), "intents", one_of("kind", "failover", "drill")
    )

    op.add_column("drills", sa.Column("fault", sa.Text(), server_default="fence", nullable=False))
    op.add_column("drills", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("drills", sa.Column("actor", sa.Text(), nullable=True))
    op.add_column("drills", sa.Column("intent_id", UUID, nullable=True))
    op.add_column("drills", sa.Column("idempotency_key", sa.Text(), nullable=True))
    op.add_column("drills", sa.Column("payload", JSONB, nullable=True))
    # None means "no objectives given", which '{}' cannot tell apart.
    op.alter_column("drills", "objectives", nullable=True)
    op.create_foreign_key("fk_drills_intent_id_intents", "drills", "intents", ["intent_id"], ["id"])
    op.create_unique_constraint("uq_drills_idempotency_key", "drills", ["idempotency_key"])
    op.create_check_constraint(
        op.f("ck_drills_kind"), "drills", one_of("kind", "planned", "unplanned")
    )
    op.create_check_constraint(
        op.f("ck_drills_fault"), "drills", one_of("fault", "fence", "external")
    )

    op.add_column(
        "failovers", sa.Column("trigger", sa.Text(), server_default="automatic", nullable=False)
    )
    op.add_column(
        "failovers", sa.Column("epoch", sa.BigInteger(), server_default="1", nullable=False)
    )
    op.add_column("failovers", sa.Column("actor", sa.Text(), server_default="", nullable=False))
    op.alter_column("failovers", "epoch", server_default=None)
    op.alter_column("failovers", "actor", server_default=None)
    op.add_column(
        "failovers", sa.Column("dry_run", sa.Boolean(), server_default=FALSE, nullable=False)
    )
    op.add_column("failovers", sa.Column("drill_id", UUID, nullable=True))
    op.add_column("failovers", sa.Column("drill_kind", sa.Text(), nullable=True))
    op.create_foreign_key(
        "fk_failovers_drill_id_drills", "failovers", "drills", ["drill_id"], ["id"]
    )
    op.create_check_constraint(
        op.f("ck_failovers_trigger"), "failovers", one_of("trigger", "automatic", "manual", "drill")
    )
    op.create_check_constraint(
        op.f("ck_failovers_drill_kind"), "failovers", one_of("drill_kind", "planned", "unplanned")
    )
    op.create_check_constraint(op.f("ck_failovers_epoch_positive"), "failovers", "epoch >= 1")
    # A failover asked for by an intent carries the intent's id, so one id follows it from
    # the API's answer to the saga's end.
    op.create_check_constraint(
        op.f("ck_failovers_intent_is_id"), "failovers", "intent_id IS NULL OR intent_id = id"
    )
    op.create_index(
        "uq_failovers_one_active",
        "failovers",
        [sa.text("(true)")],
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'running')"),
    )

    op.add_column(
        "failover_steps",
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("failover_steps", sa.Column("detail", JSONB, nullable=True))
    op.create_check_constraint(
        op.f("ck_failover_steps_attempts_non_negative"), "failover_steps", "attempts >= 0"
    )

    op.create_table(
        "controller_status",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="steady", nullable=False),
        sa.Column("code", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("decided_at", TIMESTAMPTZ, nullable=True),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("fencing_token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_controller_status"),
        sa.CheckConstraint(
            one_of("state", "steady", "suspect", "blocked", "failing_over"),
            name=op.f("ck_controller_status_state"),
        ),
        sa.CheckConstraint(
            "fencing_token >= 0",
            name=op.f("ck_controller_status_fencing_token_non_negative"),
        ),
    )


def downgrade() -> None:
    op.drop_table("controller_status")

    op.drop_constraint(op.f("ck_failover_steps_attempts_non_negative"), "failover_steps")
    op.drop_column("failover_steps", "detail")
    op.drop_column("failover_steps", "attempts")

    op.drop_index("uq_failovers_one_active", "failovers")
    for check in ("intent_is_id", "epoch_positive", "drill_kind", "trigger"):
        op.drop_constraint(op.f(f"ck_failovers_{check}"), "failovers")
    op.drop_constraint("fk_failovers_drill_id_drills", "failovers")
    for column in ("drill_kind", "drill_id", "dry_run", "actor", "epoch", "trigger"):
        op.drop_column("failovers", column)

    op.drop_constraint(op.f("ck_drills_fault"), "drills")
    op.drop_constraint(op.f("ck_drills_kind"), "drills")
    op.drop_constraint("uq_drills_idempotency_key", "drills")
    op.drop_constraint("fk_drills_intent_id_intents", "drills")
    op.execute("UPDATE drills SET objectives = '{}'::jsonb WHERE objectives IS NULL")
    op.alter_column("drills", "objectives", nullable=False)
    for column in ("payload", "idempotency_key", "intent_id", "actor", "reason", "fault"):
        op.drop_column("drills", column)

    op.drop_constraint(op.f("ck_intents_kind"), "intents")
    for column in ("status_reason", "dry_run", "reason", "target"):
        op.drop_column("intents", column)

    op.drop_index("ix_probe_observations_observed_at", "probe_observations")
    op.drop_column("probe_observations", "epoch")
    op.drop_column("probe_observations", "role")
