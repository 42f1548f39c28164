"""A region's schema: its role and epoch, dialog sessions and turns, added documents.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Repeated literally (not imported) so this revision keeps meaning what it meant when written.
REGION_ROLES = "role IN ('primary', 'standby', 'fenced', 'recovering')"
TURN_ROLES = "role IN ('user', 'assistant')"
ANSWER_KINDS = "kind IN ('extractive', 'generated', 'not_found', 'dialog', 'message')"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "region_state",
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("region", name="pk_region_state"),
        sa.CheckConstraint(REGION_ROLES, name="ck_region_state_role"),
        sa.CheckConstraint("epoch >= 0", name="ck_region_state_epoch_non_negative"),
    )
    op.create_table(
        "dialog_sessions",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("state", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_dialog_sessions"),
        sa.CheckConstraint("turns >= 0", name="ck_dialog_sessions_turns_non_negative"),
        sa.CheckConstraint("epoch >= 0", name="ck_dialog_sessions_epoch_non_negative"),
    )
    op.create_table(
        "dialog_turns",
        sa.Column("session_id", UUID(as_uuid=True), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("intent", sa.Text, nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("citations", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_dialog_turns"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["dialog_sessions.id"],
            name="fk_dialog_turns_session_id_dialog_sessions",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(TURN_ROLES, name="ck_dialog_turns_role"),
        sa.CheckConstraint(ANSWER_KINDS, name="ck_dialog_turns_kind"),
        sa.CheckConstraint("seq >= 1", name="ck_dialog_turns_seq_positive"),
        sa.CheckConstraint("epoch >= 0", name="ck_dialog_turns_epoch_non_negative"),
    )
    op.create_table(
        "documents",
        sa.Column("doc_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("doc_id", name="pk_documents"),
        sa.CheckConstraint("size_bytes >= 0", name="ck_documents_size_non_negative"),
        sa.CheckConstraint("epoch >= 0", name="ck_documents_epoch_non_negative"),
    )


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("dialog_turns")
    op.drop_table("dialog_sessions")
    op.drop_table("region_state")
