"""Incremental snapshots for the CDC source, read while the stream keeps flowing (the DBLog
watermark method, as Debezium's incremental snapshots do it).

A chunk is read between two watermark rows written to ``cdc_signals``: low watermark, ``SELECT``
of the next ``chunk_rows`` rows by primary key, high watermark. The watermarks come back through
the slot in WAL order. Between them, every row the stream changes is dropped from the chunk
(its change event is newer than, or as new as, what the ``SELECT`` saw) and remembered in
``keep``; at the high watermark the rest of the chunk is published as one transaction of
``op: r`` events closed by a chunk record. So a chunk can never overwrite a newer change, and
the sink may delete the range's rows that are neither in the chunk nor kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from switchyard.domain.cdc import Change, Chunk, Op
from switchyard.replication.catalog import TableShape, table_shape
from switchyard.replication.values import json_converter, row_to_json


@dataclass(frozen=True, slots=True)
class Plan:
    """A snapshot in progress: the tables left (the first being read) and the last key done."""

    snapshot_id: str
    tables: tuple[str, ...]
    after: list[Any] | None = None

    @staticmethod
    def everything(snapshot_id: str, tables: tuple[str, ...]) -> Plan:
        return Plan(snapshot_id, tuple(tables))

    @staticmethod
    def load_all(raw: object) -> list[Plan]:
        if not isinstance(raw, list):
            return []
        return [Plan(str(p["id"]), tuple(p["tables"]), p.get("after")) for p in raw]

    @staticmethod
    def dump_all(plans: list[Plan]) -> list[dict[str, Any]]:
        return [{"id": p.snapshot_id, "tables": list(p.tables), "after": p.after} for p in plans]

    @staticmethod
    def advance(plans: list[Plan], chunk: Chunk) -> list[Plan]:
        """The plans once ``chunk`` (of the first plan) is published."""
        first, rest = plans[0], plans[1:]
        if chunk.through_key is not None:
            return [Plan(first.snapshot_id, first.tables, chunk.through_key), *rest]
        if len(first.tables) > 1:
            return [Plan(first.snapshot_id, first.tables[1:]), *rest]
        return list(rest)


@dataclass
class Window:
    plan: Plan
    shape: TableShape
    low_id: int
    high_id: int
    rows: dict[tuple[Any, ...], dict[str, Any]]
    through_key: list[Any] | None
    keep: set[tuple[Any, ...]] = field(default_factory=set)
    is_open: bool = False

    @property
    def table(self) -> str:
        return self.shape.name

    def open(self) -> None:
        self.is_open = True

    def touched(self, table: str, image: dict[str, Any]) -> None:
        if not self.is_open or table != self.shape.name:
            return
        key = tuple(image.get(k) for k in self.shape.key)
        self.rows.pop(key, None)
        self.keep.add(key)

    def close(self, plans: list[Plan]) -> tuple[Chunk, list[Change]]:
        plan = self.plan
        last = self.through_key is None and len(plan.tables) == 1
        chunk = Chunk(
            snapshot_id=plan.snapshot_id,
            table=self.table,
            after_key=plan.after,
            through_key=self.through_key,
            keep=tuple(sorted(self.keep, key=repr)),
            last=last,
        )
        key_names = self.shape.key
        changes = [
            Change(self.table, Op.READ, dict(zip(key_names, key, strict=True)), None, after)
            for key, after in self.rows.items()
        ]
        return chunk, changes


class SnapshotReader:
    def __init__(self, sql: psycopg.Connection[tuple[object, ...]], chunk_rows: int) -> None:
        self._sql = sql
        self._chunk_rows = chunk_rows
        self._shapes: dict[str, TableShape] = {}

    def open_window(self, plan: Plan) -> Window:
        table = plan.tables[0]
        shape = self._shapes.get(table) or table_shape(self._sql, table)
        self._shapes[table] = shape
        converters = [json_converter(oid) for oid in shape.type_oids]
        columns = ", ".join(f'"{c}"::text' for c in shape.columns)
        keys = ", ".join(f'"{k}"' for k in shape.key)
        where, params = "", []
        if plan.after is not None:
            casts = ", ".join(f"CAST(%s AS {shape.type_of(k)})" for k in shape.key)
            where = f"WHERE ({keys}) > ({casts})"
            params = list(plan.after)
        query = f'SELECT {columns} FROM "{table}" {where} ORDER BY {keys} LIMIT %s'  # noqa: S608
        sql = self._sql
        low = _watermark(sql, "watermark_low")
        fetched = sql.execute(query.encode(), [*params, self._chunk_rows]).fetchall()
        high = _watermark(sql, "watermark_high")
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        key_at = [shape.columns.index(k) for k in shape.key]
        last_key: list[Any] | None = None
        for raw in fetched:
            after = row_to_json(converters, raw, shape.columns)  # type: ignore[arg-type]
            key = tuple(after[shape.columns[i]] for i in key_at)
            rows[key] = after
            last_key = list(key)
        through = last_key if len(fetched) == self._chunk_rows else None
        return Window(plan, shape, low, high, rows, through)


def _watermark(sql: psycopg.Connection[tuple[object, ...]], kind: str) -> int:
    row = sql.execute("INSERT INTO cdc_signals (kind) VALUES (%s) RETURNING id", (kind,)).fetchone()
    assert row is not None
    return int(str(row[0]))
