"""Change data capture bookkeeping: the source's confirmed position, the signal table that
carries snapshot watermarks and re-sync requests through the WAL, the sink's applied position,
and the publication of the replicated tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Repeated literally (not imported) so this revision keeps meaning what it meant when written.
PUBLICATION = "switchyard_cdc"
# region_state and cdc_signals are published for the source's own use (epoch changes and
# watermarks arrive in WAL order); they are never forwarded to Kafka.
PUBLISHED = ("dialog_sessions", "dialog_turns", "documents", "region_state", "cdc_signals")


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "cdc_source_positions",
        sa.Column("slot", sa.Text, nullable=False),
        # A new stream id whenever the slot is (re)created: a sink seeing it change knows the
        # changes between the old slot and the new one may be missing.
        sa.Column("stream_id", UUID(as_uuid=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("confirmed_lsn", sa.BigInteger, nullable=False),
        sa.Column("tx_seq", sa.BigInteger, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("snapshot", JSONB, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("slot", name="pk_cdc_source_positions"),
        sa.CheckConstraint("tx_seq >= 0", name=op.f("ck_cdc_source_positions_tx_seq_non_negative")),
    )
    op.create_table(
        "cdc_signals",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_cdc_signals"),
        sa.CheckConstraint(
            "kind IN ('watermark_low', 'watermark_high', 'snapshot')",
            name=op.f("ck_cdc_signals_kind"),
        ),
    )
    op.create_table(
        "cdc_applied",
        sa.Column("source_region", sa.Text, nullable=False),
        sa.Column("stream_id", UUID(as_uuid=True), nullable=True),
        sa.Column("tx_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source_lsn", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source_epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("source_commit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rebase", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("offsets", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("consumer_lag", sa.BigInteger, nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gap", JSONB, nullable=True),
        sa.Column("resync", JSONB, nullable=True),
        sa.Column("dead_letters", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("stale_refused", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("source_region", name="pk_cdc_applied"),
    )
    op.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {', '.join(PUBLISHED)}")


def downgrade() -> None:
    op.execute(f"DROP PUBLICATION IF EXISTS {PUBLICATION}")
    op.drop_table("cdc_applied")
    op.drop_table("cdc_signals")
    op.drop_table("cdc_source_positions")
