"""Re-syncing a standby from its source by an incremental snapshot (``switchyard cdc resync``).

The operator's answer to a gap: the standby's sink records that the gap is accepted and which
snapshot will heal it (so it applies again, and keeps reporting "re-syncing" until that
snapshot's last chunk is applied); then the request goes into the source's ``cdc_signals``,
where the source sees it in WAL order and starts the snapshot. In that order, so the snapshot
can never finish before the sink knows to wait for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from switchyard.db.region_tables import REPLICATED_TABLES
from switchyard.domain.cdc import Gap
from switchyard.domain.secrets import Secret
from switchyard.errors import ConfigError
from switchyard.replication.sink import accept_gap


@dataclass(frozen=True, slots=True)
class ResyncRequest:
    snapshot_id: str
    tables: tuple[str, ...]
    gap: Gap | None  # the gap accepted, if one was open


def request_resync(
    *, source: str, source_db: Secret, target_db: Secret, tables: Sequence[str] = ()
) -> ResyncRequest:
    chosen = tuple(tables) or REPLICATED_TABLES
    unknown = [t for t in chosen if t not in REPLICATED_TABLES]
    if unknown:
        raise ConfigError(
            "--tables",
            "tables",
            f"not replicated: {', '.join(unknown)}; choose from {', '.join(REPLICATED_TABLES)}",
        )
    snapshot_id = str(uuid.uuid4())
    with psycopg.connect(target_db.reveal()) as target:
        gap = accept_gap(target, source, snapshot_id)
        if gap is None:
            target.execute(
                "UPDATE cdc_applied SET resync = %s WHERE source_region = %s",
                (Jsonb({"id": snapshot_id}), source),
            )
    with psycopg.connect(source_db.reveal()) as src:
        src.execute(
            "INSERT INTO cdc_signals (kind, payload) VALUES ('snapshot', %s)",
            (Jsonb({"id": snapshot_id, "tables": list(chosen)}),),
        )
    return ResyncRequest(snapshot_id, chosen, gap)
