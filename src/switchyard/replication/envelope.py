"""The wire format of CDC records: a Debezium-compatible JSON envelope, parsed at the edge.

A row change is one Kafka record, keyed by the row's primary key (JSON object), valued::

    {"before": {...} | null, "after": {...} | null, "op": "c" | "u" | "d" | "r",
     "ts_ms": <when published>,
     "source": {"version": "switchyard/1", "connector": "switchyard", "name": <topic>,
                "db": ..., "schema": "public", "table": ..., "region": ..., "epoch": ...,
                "stream": <slot stream id>, "txSeq": <per-source transaction number>,
                "lsn": <commit end LSN>, "txId": ..., "ts_ms": <commit time>,
                "snapshot": "false" | "incremental" | "last"},
     "transaction": {"id": "<txId>:<lsn>", "total_order": i, "data_collection_order": j,
                     "event_count": n}}

Debezium's own fields keep their meaning; ``region``, ``epoch``, ``stream``, ``txSeq`` and
``transaction.event_count`` (so a consumer knows when a transaction is complete without a
separate END marker) are ours. Control records carry a ``switchyard.kind`` header
(``chunk``, ``heartbeat``, ``resume``); a record without it is a row change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from switchyard.domain.cdc import Change, Chunk, Heartbeat, Op, Resume, TxSource

KIND_HEADER = "switchyard.kind"
ERROR_HEADER = "switchyard.error"
VERSION = "switchyard/1"


class MalformedRecord(ValueError):  # noqa: N818 - named for what it is, like ValueError's kin
    """A record that is not a valid CDC envelope (parked in the dead-letter topic)."""


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One row change of a transaction: its place in it and the transaction's source."""

    source: TxSource
    index: int  # 1-based position in the transaction (total_order)
    count: int  # how many records the transaction has (event_count)
    change: Change | None  # None for the chunk record that closes a snapshot chunk
    chunk: Chunk | None = None


Parsed = ChangeRecord | Heartbeat | Resume


# -- encoding (the source's hot path) --------------------------------------------------------


def source_block(tx: TxSource, *, topic: str, db: str) -> dict[str, Any]:
    return {
        "version": VERSION,
        "connector": "switchyard",
        "name": topic,
        "db": db,
        "schema": "public",
        "table": None,
        "region": tx.region,
        "epoch": tx.epoch,
        "stream": tx.stream_id,
        "txSeq": tx.tx_seq,
        "lsn": tx.lsn,
        "txId": tx.txid,
        "ts_ms": tx.commit_ms,
        "snapshot": tx.snapshot,
    }


def encode_changes(
    tx: TxSource, changes: list[Change], *, topic: str, db: str, now_ms: int, extra: int = 0
) -> list[tuple[bytes, bytes]]:
    """(key, value) of each change; ``extra`` control records follow them in the same
    transaction (a snapshot chunk's closing record) and count in ``event_count``."""
    dumps = orjson.dumps
    count = len(changes) + extra
    tx_id = f"{tx.txid if tx.txid is not None else 'snapshot'}:{tx.lsn}"
    per_table: dict[str, int] = {}
    sources: dict[str, dict[str, Any]] = {}
    out = []
    for i, change in enumerate(changes, 1):
        table = change.table
        src = sources.get(table)
        if src is None:
            src = source_block(tx, topic=topic, db=db)
            src["table"] = table
            sources[table] = src
        order = per_table.get(table, 0) + 1
        per_table[table] = order
        value = {
            "before": change.before,
            "after": change.after,
            "op": change.op.value,
            "ts_ms": now_ms,
            "source": src,
            "transaction": {
                "id": tx_id,
                "total_order": i,
                "data_collection_order": order,
                "event_count": count,
            },
        }
        out.append((dumps(change.key), dumps(value)))
    return out


def encode_chunk(tx: TxSource, chunk: Chunk, *, topic: str, db: str, index: int) -> bytes:
    src = source_block(tx, topic=topic, db=db)
    src["table"] = chunk.table
    return orjson.dumps(
        {
            "source": src,
            "transaction": {
                "id": f"snapshot:{tx.lsn}",
                "total_order": index,
                "event_count": index,
            },
            "chunk": {
                "snapshot": chunk.snapshot_id,
                "table": chunk.table,
                "after": chunk.after_key,
                "through": chunk.through_key,
                "keep": [list(k) for k in chunk.keep],
                "last": chunk.last,
            },
        }
    )


def _standing(p: Heartbeat | Resume) -> dict[str, Any]:
    """The fields heartbeats and resume markers share: where the source stands."""
    return {
        "region": p.region,
        "epoch": p.epoch,
        "stream": p.stream_id,
        "txSeq": p.tx_seq,
        "lsn": p.lsn,
        "ts_ms": p.at_ms,
    }


def encode_heartbeat(beat: Heartbeat) -> bytes:
    return orjson.dumps(_standing(beat))


def encode_resume(marker: Resume) -> bytes:
    body = _standing(marker)
    body["newStream"] = marker.new_stream
    body["snapshot"] = marker.snapshot_id
    return orjson.dumps(body)


# -- parsing (the sink's edge) ---------------------------------------------------------------


def parse(headers: Mapping[str, bytes], key: bytes | None, value: bytes | None) -> Parsed:
    """The typed record, or MalformedRecord saying what is wrong with it."""
    kind = headers.get(KIND_HEADER, b"change").decode(errors="replace")
    if value is None:
        raise MalformedRecord("record has no value")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedRecord(f"value is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedRecord("value is not a JSON object")
    try:
        match kind:
            case "change":
                return _change(body, _record_key(key))
            case "chunk":
                return _chunk(body)
            case "heartbeat":
                return Heartbeat(*_position_of(body))
            case "resume":
                snapshot = body.get("snapshot")
                return Resume(
                    *_position_of(body),
                    _bool(body, "newStream"),
                    snapshot if isinstance(snapshot, str) else None,
                )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedRecord(f"{kind} record: {exc}") from None
    raise MalformedRecord(f"unknown record kind {kind!r}")


def _position_of(body: dict[str, Any]) -> tuple[str, int, str, int, int, int]:
    """region, epoch, stream, txSeq, lsn, ts_ms: what ``_standing`` wrote."""
    return (
        _str(body, "region"),
        _int(body, "epoch"),
        _str(body, "stream"),
        _int(body, "txSeq"),
        _int(body, "lsn"),
        _int(body, "ts_ms"),
    )


def _tx_source(src: Any) -> TxSource:
    if not isinstance(src, dict):
        raise TypeError("source is not an object")
    txid = src.get("txId")
    return TxSource(
        region=_str(src, "region"),
        epoch=_int(src, "epoch"),
        stream_id=_str(src, "stream"),
        tx_seq=_int(src, "txSeq"),
        lsn=_int(src, "lsn"),
        commit_ms=_int(src, "ts_ms"),
        txid=txid if isinstance(txid, int) else None,
        snapshot=str(src.get("snapshot", "false")),
    )


def _position(body: dict[str, Any]) -> tuple[int, int]:
    tx = body.get("transaction")
    if not isinstance(tx, dict):
        raise TypeError("transaction is not an object")
    index, count = _int(tx, "total_order"), _int(tx, "event_count")
    if not 1 <= index <= count:
        raise ValueError(f"total_order {index} outside 1..{count}")
    return index, count


def _record_key(key: bytes | None) -> dict[str, Any]:
    if key is None:
        raise ValueError("a row change without a key")
    try:
        parsed = orjson.loads(key)
    except orjson.JSONDecodeError:
        raise ValueError("key is not JSON") from None
    if not isinstance(parsed, dict) or not parsed:
        raise TypeError("key is not a non-empty JSON object")
    return parsed


def _change(body: dict[str, Any], key: dict[str, Any]) -> ChangeRecord:
    src = body.get("source")
    source = _tx_source(src)
    index, count = _position(body)
    op = Op(str(body.get("op")))
    before, after = body.get("before"), body.get("after")
    for name, image in (("before", before), ("after", after)):
        if image is not None and not isinstance(image, dict):
            raise TypeError(f"{name} is not an object")
    if op is Op.DELETE and before is None:
        raise ValueError("a delete without a before image")
    if op is not Op.DELETE and after is None:
        raise ValueError(f"op {op.value} without an after image")
    table = _str(src, "table") if isinstance(src, dict) else ""
    return ChangeRecord(source, index, count, Change(table, op, key, before, after))


def _chunk(body: dict[str, Any]) -> ChangeRecord:
    source = _tx_source(body.get("source"))
    index, count = _position(body)
    raw = body.get("chunk")
    if not isinstance(raw, dict):
        raise TypeError("chunk is not an object")
    keep = raw.get("keep", [])
    if not isinstance(keep, list) or not all(isinstance(k, list) for k in keep):
        raise TypeError("chunk.keep is not a list of keys")
    chunk = Chunk(
        snapshot_id=_str(raw, "snapshot"),
        table=_str(raw, "table"),
        after_key=_key(raw.get("after")),
        through_key=_key(raw.get("through")),
        keep=tuple(tuple(k) for k in keep),
        last=_bool(raw, "last"),
    )
    return ChangeRecord(source, index, count, None, chunk)


def _key(value: Any) -> list[Any] | None:
    if value is None or isinstance(value, list):
        return value
    raise TypeError("a chunk bound is not a key list")


def _str(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise TypeError(f"{name} is not a boolean")
    return value


def _int(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} is not an integer")
    return value
