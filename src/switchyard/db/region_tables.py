"""A region's own tables (SQLAlchemy Core), mirroring migrations/region/versions.

- ``region_state``: this region's role and epoch, one row per region name. The control plane
  writes it when it promotes or fences; the runtime reads it *inside* every write transaction
  (``FOR SHARE``), so a fence (an ``UPDATE`` of the row) waits for writes in flight and every
  later write sees the new role. It is never replicated: each region keeps its own.
  ``fencing_token`` is the lease token of the leader that last wrote it: the region's own
  database refuses a write from an older leader (``db/region_state.py``).
- ``dialog_sessions`` / ``dialog_turns``: conversations. Every row carries the epoch and
  region that wrote it, so after a failover the new primary can tell rows it inherited.
- ``documents``: documents added through the API (the bytes, so an index can be rebuilt).

Replicated tables (all but ``region_state``) have primary keys, which change data capture
needs to key its events.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from switchyard.db.tables import NAMING_CONVENTION, REGION_ROLES, one_of

TURN_ROLES = ("user", "assistant")
ANSWER_KINDS = ("extractive", "generated", "not_found", "dialog", "message")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

region_state = Table(
    "region_state",
    metadata,
    Column("region", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("fencing_token", BigInteger, nullable=False, server_default="0"),
    CheckConstraint(one_of("role", REGION_ROLES), name="role"),
    CheckConstraint("epoch >= 0", name="epoch_non_negative"),
    CheckConstraint("fencing_token >= 0", name="fencing_token_non_negative"),
)

dialog_sessions = Table(
    "dialog_sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("state", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("turns", Integer, nullable=False, server_default="0"),
    Column("region", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("turns >= 0", name="turns_non_negative"),
    CheckConstraint("epoch >= 0", name="epoch_non_negative"),
)

dialog_turns = Table(
    "dialog_turns",
    metadata,
    Column(
        "session_id",
        UUID(as_uuid=True),
        ForeignKey("dialog_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("role", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("intent", Text, nullable=True),
    Column("confidence", Float, nullable=True),
    Column("citations", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("region", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("session_id", "seq"),
    CheckConstraint(one_of("role", TURN_ROLES), name="role"),
    CheckConstraint(one_of("kind", ANSWER_KINDS), name="kind"),
    CheckConstraint("seq >= 1", name="seq_positive"),
    CheckConstraint("epoch >= 0", name="epoch_non_negative"),
)

documents = Table(
    "documents",
    metadata,
    Column("doc_id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("region", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("size_bytes >= 0", name="size_non_negative"),
    CheckConstraint("epoch >= 0", name="epoch_non_negative"),
)

# -- change data capture (migrations/region/versions/0002_cdc.py) -----------------------------

# The publication the CDC source reads. ``region_state`` and ``cdc_signals`` are in it for the
# source's own use (epoch changes and snapshot watermarks arrive in WAL order); only
# REPLICATED_TABLES are forwarded to Kafka.
PUBLICATION = "switchyard_cdc"
REPLICATED_TABLES = ("dialog_sessions", "dialog_turns", "documents")

cdc_source_positions = Table(
    "cdc_source_positions",
    metadata,
    Column("slot", Text, primary_key=True),
    Column("stream_id", UUID(as_uuid=True), nullable=False),
    Column("topic", Text, nullable=False),
    Column("confirmed_lsn", BigInteger, nullable=False),
    Column("tx_seq", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("snapshot", JSONB, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("tx_seq >= 0", name="tx_seq_non_negative"),
)

cdc_signals = Table(
    "cdc_signals",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("kind", ("watermark_low", "watermark_high", "snapshot")), name="kind"),
)

cdc_applied = Table(
    "cdc_applied",
    metadata,
    Column("source_region", Text, primary_key=True),
    Column("stream_id", UUID(as_uuid=True), nullable=True),
    Column("tx_seq", BigInteger, nullable=False, server_default="0"),
    Column("source_lsn", BigInteger, nullable=False, server_default="0"),
    Column("source_epoch", BigInteger, nullable=False, server_default="0"),
    Column("source_commit_at", DateTime(timezone=True), nullable=True),
    Column("applied_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("rebase", Boolean, nullable=False, server_default=false()),
    Column("offsets", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("consumer_lag", BigInteger, nullable=True),
    Column("status_at", DateTime(timezone=True), nullable=True),
    Column("gap", JSONB, nullable=True),
    Column("resync", JSONB, nullable=True),
    Column("dead_letters", BigInteger, nullable=False, server_default="0"),
    Column("stale_refused", BigInteger, nullable=False, server_default="0"),
)
