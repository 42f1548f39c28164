"""The fencing token of the leader that wrote ``region_state``, so the region's own database
refuses a write from a deposed leader (an older token).

Rows written before this revision carry token 0, as a freshly seeded row does: any leader's
first write passes, and from then on the token only grows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "region_state",
        sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default="0"),
    )
    # op.f: the name as written, not run through the metadata's naming convention again.
    op.create_check_constraint(
        op.f("ck_region_state_fencing_token_non_negative"), "region_state", "fencing_token >= 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_region_state_fencing_token_non_negative"), "region_state")
    op.drop_column("region_state", "fencing_token")
