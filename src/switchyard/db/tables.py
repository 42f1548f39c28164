"""Control-plane tables (SQLAlchemy Core), mirroring migrations/control/versions.

The migrations are the source of truth for the schema; these definitions are what the
repositories query with, and tests/integration/test_migrations.py keeps the two in step.

Enumerated columns carry check constraints so a typo cannot be stored. The value lists are
repeated literally in the migration on purpose: a revision must keep meaning what it meant
when written, whatever this module says later.
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
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from switchyard.domain.failover import DrillKind, LoopState, Trigger
from switchyard.domain.region import RegionRole

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REGION_ROLES = tuple(role.value for role in RegionRole)
INTENT_STATUSES = ("pending", "running", "succeeded", "failed", "rejected", "cancelled")
FAILOVER_STATES = ("pending", "running", "succeeded", "failed", "aborted")
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "skipped")
DRILL_STATUSES = ("scheduled", "running", "passed", "failed", "aborted")
INTENT_KINDS = ("failover", "drill")
TRIGGERS = tuple(trigger.value for trigger in Trigger)
DRILL_KINDS = tuple(kind.value for kind in DrillKind)
DRILL_FAULTS = ("fence", "external")
LOOP_STATES = tuple(state.value for state in LoopState)
ACTIVE_FAILOVER_STATES = ("pending", "running")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a check constraint that ``column`` holds one of ``values``."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


regions = Table(
    "regions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(one_of("role", REGION_ROLES), name="role"),
    CheckConstraint("epoch >= 0", name="epoch_non_negative"),
    # At most one primary: the database refuses a split brain even if a controller bugs out.
    Index(
        "uq_regions_one_primary",
        "role",
        unique=True,
        postgresql_where=text("role = 'primary'"),
    ),
)

leases = Table(
    "leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("fencing_token", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("fencing_token >= 1", name="fencing_token_positive"),
)

probe_observations = Table(
    "probe_observations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("region", Text, nullable=False),
    Column("vantage", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("reason", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    # The role and epoch the region's own database reported (PostgreSQL probe), if any.
    Column("role", Text, nullable=True),
    Column("epoch", BigInteger, nullable=True),
    CheckConstraint("latency_ms IS NULL OR latency_ms >= 0", name="latency_non_negative"),
    Index("ix_probe_observations_region_vantage_observed_at", "region", "vantage", "observed_at"),
    Index("ix_probe_observations_observed_at", "observed_at"),
)

intents = Table(
    "intents",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("kind", Text, nullable=False),
    # The request as submitted: a retry with the same idempotency key must equal it.
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("actor", Text, nullable=False),
    Column("idempotency_key", Text, nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("target", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("dry_run", Boolean, nullable=False, server_default=text("false")),
    # Why the intent has its status: the rejection, or how its failover ended.
    Column("status_reason", Text, nullable=False, server_default=""),
    CheckConstraint(one_of("status", INTENT_STATUSES), name="status"),
    CheckConstraint(one_of("kind", INTENT_KINDS), name="kind"),
)

failovers = Table(
    "failovers",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("intent_id", UUID(as_uuid=True), ForeignKey("intents.id"), nullable=True),
    Column("source_region", Text, ForeignKey("regions.name"), nullable=False),
    Column("target_region", Text, ForeignKey("regions.name"), nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("current_step", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("trigger", Text, nullable=False, server_default="automatic"),
    Column("epoch", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False, server_default=text("false")),
    # use_alter: drills.failover_id points back here, so the two tables form a cycle.
    Column("drill_id", UUID(as_uuid=True), ForeignKey("drills.id", use_alter=True), nullable=True),
    Column("drill_kind", Text, nullable=True),
    CheckConstraint(one_of("state", FAILOVER_STATES), name="state"),
    CheckConstraint("source_region <> target_region", name="distinct_regions"),
    CheckConstraint(one_of("trigger", TRIGGERS), name="trigger"),
    CheckConstraint(one_of("drill_kind", DRILL_KINDS), name="drill_kind"),
    CheckConstraint("epoch >= 1", name="epoch_positive"),
    # An intent's failover carries the intent's id: one id from the API's answer to the end.
    CheckConstraint("intent_id IS NULL OR intent_id = id", name="intent_is_id"),
    # At most one failover pending or running: two leaders racing cannot both start one.
    Index(
        "uq_failovers_one_active",
        text("(true)"),
        unique=True,
        postgresql_where=text(one_of("state", ACTIVE_FAILOVER_STATES)),
    ),
)

failover_steps = Table(
    "failover_steps",
    metadata,
    Column(
        "failover_id",
        UUID(as_uuid=True),
        ForeignKey("failovers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("detail", JSONB, nullable=True),
    PrimaryKeyConstraint("failover_id", "seq"),
    CheckConstraint(one_of("status", STEP_STATUSES), name="status"),
    CheckConstraint("seq >= 0", name="seq_non_negative"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
)

drills = Table(
    "drills",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("kind", Text, nullable=False),
    Column("target_region", Text, ForeignKey("regions.name"), nullable=False),
    Column("objectives", JSONB, nullable=True, server_default=text("'{}'::jsonb")),
    Column("failover_id", UUID(as_uuid=True), ForeignKey("failovers.id"), nullable=True),
    Column("status", Text, nullable=False, server_default="scheduled"),
    Column("rto_seconds", Float, nullable=True),
    Column("rpo_seconds", Float, nullable=True),
    Column("report", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # fence: the loop fences the primary; external: armed for the next automatic failover.
    Column("fault", Text, nullable=False, server_default="fence"),
    Column("reason", Text, nullable=True),
    Column("actor", Text, nullable=True),
    Column("intent_id", UUID(as_uuid=True), ForeignKey("intents.id"), nullable=True),
    # An armed drill has no intent, so its idempotency key and request are kept here.
    Column("idempotency_key", Text, nullable=True, unique=True),
    Column("payload", JSONB, nullable=True),
    CheckConstraint(one_of("status", DRILL_STATUSES), name="status"),
    CheckConstraint("rto_seconds IS NULL OR rto_seconds >= 0", name="rto_non_negative"),
    CheckConstraint("rpo_seconds IS NULL OR rpo_seconds >= 0", name="rpo_non_negative"),
    CheckConstraint(one_of("kind", DRILL_KINDS), name="kind"),
    CheckConstraint(one_of("fault", DRILL_FAULTS), name="fault"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    # No foreign key: history must outlive a region's removal from the topology.
    Column("region", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("before", JSONB, nullable=True),
    Column("after", JSONB, nullable=True),
    # Serves the region-filtered page: WHERE region = ? AND id < ? ORDER BY id DESC.
    Index("ix_audit_events_region_id", "region", "id"),
)

controller_status = Table(
    "controller_status",
    metadata,
    # One row, named "loop": the loop's last decision and the fence every leader passes.
    Column("name", Text, primary_key=True),
    Column("state", Text, nullable=False, server_default="steady"),
    Column("code", Text, nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("holder", Text, nullable=True),
    # The highest fencing token that has acted; a lower one is refused.
    Column("fencing_token", BigInteger, nullable=False),
    CheckConstraint(one_of("state", LOOP_STATES), name="state"),
    CheckConstraint("fencing_token >= 0", name="fencing_token_non_negative"),
)
