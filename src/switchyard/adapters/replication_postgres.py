"""Replication lag read from the two databases: the primary's slot and the standby's
``cdc_applied`` row (written by the sink with every batch, its status about once a second)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from switchyard.adapters.clock import SystemClock
from switchyard.domain.replication import ReplicationLag, seconds_between
from switchyard.errors import NotFoundError, TransientError
from switchyard.replication.catalog import slot_name


class PostgresReplicationMonitor:
    def __init__(
        self, engines: Mapping[str, Engine], now: Callable[[], datetime] | None = None
    ) -> None:
        self._engines = dict(engines)
        self._now = now or SystemClock().now

    def _engine(self, region: str) -> Engine:
        try:
            return self._engines[region]
        except KeyError:
            raise NotFoundError(f"no database configured for region {region!r}") from None

    def wal_position(self, region: str) -> int:
        try:
            with self._engine(region).connect() as conn:
                value = conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).scalar()
        except SQLAlchemyError as exc:
            raise TransientError(f"{region}'s database: {type(exc).__name__}") from None
        return int(value or 0)

    def lag(self, source: str, target: str) -> ReplicationLag:
        slot = self._slot(source)
        applied = self._applied(source, target)
        now = self._now()
        if applied is None:
            applied = {}
        commit_at, applied_at = applied.get("source_commit_at"), applied.get("applied_at")
        heartbeat_at = applied.get("heartbeat_at")
        newest = max((t for t in (commit_at, heartbeat_at) if t is not None), default=None)
        resync = applied.get("resync")
        return ReplicationLag(
            source=source,
            target=target,
            lag_bytes=None if slot is None else slot.get("lag_bytes"),
            lag_seconds=seconds_between(applied_at, commit_at),
            consumer_lag_messages=applied.get("consumer_lag"),
            heartbeat_age_seconds=seconds_between(now, heartbeat_at),
            slot_exists=None if slot is None else bool(slot.get("exists")),
            slot_active=None if slot is None else slot.get("active"),
            applied_lsn=applied.get("source_lsn"),
            applied_tx_seq=applied.get("tx_seq"),
            source_epoch=applied.get("source_epoch"),
            behind_seconds=seconds_between(now, newest),
            status_age_seconds=seconds_between(now, applied.get("status_at")),
            gap=applied.get("gap"),
            resyncing=resync is not None,
            dead_letters=int(applied.get("dead_letters") or 0),
            stale_refused=int(applied.get("stale_refused") or 0),
            source_commit_at=commit_at,
            heartbeat_at=heartbeat_at,
        )

    def _slot(self, region: str) -> dict[str, Any] | None:
        try:
            with self._engine(region).connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT active, pg_current_wal_lsn() - confirmed_flush_lsn AS lag_bytes "
                        "FROM pg_replication_slots WHERE slot_name = :slot"
                    ),
                    {"slot": slot_name(region)},
                ).one_or_none()
        except SQLAlchemyError:
            return None
        if row is None:
            return {"exists": False, "active": False, "lag_bytes": None}
        return {"exists": True, "active": row.active, "lag_bytes": int(row.lag_bytes or 0)}

    def _applied(self, source: str, target: str) -> dict[str, Any] | None:
        try:
            with self._engine(target).connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT tx_seq, source_lsn, source_epoch, source_commit_at, applied_at, "
                        "heartbeat_at, consumer_lag, status_at, gap, resync, dead_letters, "
                        "stale_refused FROM cdc_applied WHERE source_region = :source"
                    ),
                    {"source": source},
                ).one_or_none()
        except SQLAlchemyError:
            return None
        return None if row is None else dict(row._mapping)

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
