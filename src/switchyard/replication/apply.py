"""Turning row changes into SQL on the standby: upserts, updates, deletes and snapshot-chunk
range deletes, checked against the standby's own catalog first.

Every statement casts each parameter to the column's type as the standby's catalog names it,
so values travel as Debezium-style JSON and the standby decides how to read them. A change the
standby's schema cannot take (unknown table or column, a value of the wrong type) raises
``SchemaMismatch`` before anything is written: the sink parks it in the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from switchyard.domain.cdc import Change, Chunk, Op
from switchyard.replication.catalog import TableShape
from switchyard.replication.values import SchemaMismatch, param_converter

Statement = tuple[str, tuple[Any, ...]]


class Applier:
    def __init__(self, shapes: dict[str, TableShape]) -> None:
        self._shapes = shapes
        self._params: dict[str, dict[str, Callable[[object], object]]] = {
            name: {c: param_converter(t) for c, t in zip(s.columns, s.type_names, strict=True)}
            for name, s in shapes.items()
        }
        self._sql: dict[tuple[str, str, tuple[str, ...]], str] = {}

    # -- planning (no I/O): SchemaMismatch here means nothing was written ----------------------
    def statements(self, changes: Iterable[Change]) -> list[Statement]:
        out: list[Statement] = []
        for change in changes:
            shape = self._shape(change.table)
            key = self._values(shape, shape.key, change.key, "key")
            if change.op is Op.DELETE:
                out.append((self._stmt("delete", shape, ()), key))
                continue
            after = change.after or {}
            unknown = set(after) - set(shape.columns)
            if unknown:
                raise SchemaMismatch(f"{change.table} has no column {', '.join(sorted(unknown))}")
            columns = tuple(c for c in shape.columns if c in after)
            values = self._values(shape, columns, after, "after")
            full = len(columns) == len(shape.columns)
            if change.op is Op.UPDATE:
                new_key = self._values(shape, shape.key, after, "after") if full else key
                if new_key != key:
                    out.append((self._stmt("delete", shape, ()), key))
                if not full:
                    sets = tuple(c for c in columns if c not in shape.key)
                    sql = self._stmt("update", shape, sets)
                    out.append((sql, self._values(shape, sets, after, "after") + key))
                    continue
            out.append((self._stmt("upsert", shape, columns), values))
        return out

    def _shape(self, table: str) -> TableShape:
        shape = self._shapes.get(table)
        if shape is None:
            raise SchemaMismatch(f"the standby has no replicated table {table!r}")
        return shape

    def _values(
        self, shape: TableShape, columns: tuple[str, ...], image: dict[str, Any], what: str
    ) -> tuple[Any, ...]:
        convert = self._params[shape.name]
        values = []
        for column in columns:
            if column not in image:
                raise SchemaMismatch(f"{shape.name}: {what} lacks column {column}")
            value = image[column]
            values.append(None if value is None else convert[column](value))
        return tuple(values)

    def _stmt(self, kind: str, shape: TableShape, columns: tuple[str, ...]) -> str:
        cache_key = (kind, shape.name, columns)
        sql = self._sql.get(cache_key)
        if sql is None:
            sql = _render(kind, shape, columns)
            self._sql[cache_key] = sql
        return sql

    # -- execution -----------------------------------------------------------------------
    def execute(self, cur: psycopg.Cursor[Any], statements: list[Statement]) -> None:
        """Run ``statements`` in order, consecutive runs of one statement as one executemany
        (pipelined by psycopg)."""
        i = 0
        while i < len(statements):
            sql = statements[i][0]
            j = i
            while j < len(statements) and statements[j][0] is sql:
                j += 1
            if j - i == 1:
                cur.execute(sql.encode(), statements[i][1])
            else:
                cur.executemany(sql.encode(), [p for _, p in statements[i:j]])
            i = j

    def chunk_deletes(self, cur: psycopg.Cursor[Any], chunk: Chunk, rows: list[Change]) -> int:
        """Delete the chunk range's rows that are neither in the chunk nor kept (rows the
        source no longer has). Returns how many were deleted."""
        shape = self._shape(chunk.table)
        convert = self._params[shape.name]
        keys = ", ".join(f'"{k}"' for k in shape.key)
        casts = ", ".join(f"CAST(%s AS {shape.type_of(k)})" for k in shape.key)
        where, params = [], []
        if chunk.after_key is not None:
            where.append(f"({keys}) > ({casts})")
            params += [convert[k](v) for k, v in zip(shape.key, chunk.after_key, strict=True)]
        if chunk.through_key is not None:
            where.append(f"({keys}) <= ({casts})")
            params += [convert[k](v) for k, v in zip(shape.key, chunk.through_key, strict=True)]
        text_keys = ", ".join(f'"{k}"::text' for k in shape.key)
        sql = f'SELECT {text_keys} FROM "{shape.name}"' + (  # noqa: S608
            f" WHERE {' AND '.join(where)}" if where else ""
        )
        held = {tuple(r) for r in cur.execute(sql.encode(), params).fetchall()}
        wanted = {_text_key(c.key, shape) for c in rows} | {
            tuple(_text(v) for v in k) for k in chunk.keep
        }
        gone = [k for k in held if k not in wanted]
        if gone:
            delete = f'DELETE FROM "{shape.name}" WHERE ({keys}) = ({casts})'  # noqa: S608
            cur.executemany(delete.encode(), gone)
        return len(gone)


def _text_key(key: dict[str, Any], shape: TableShape) -> tuple[str | None, ...]:
    return tuple(_text(key.get(k)) for k in shape.key)


def _text(value: Any) -> str | None:
    """A key value as PostgreSQL's text output of it (keys are uuid, integer or text here)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(kind: str, shape: TableShape, columns: tuple[str, ...]) -> str:
    def cast(column: str) -> str:
        return f"CAST(%s AS {shape.type_of(column)})"

    table = f'"{shape.name}"'
    key_match = " AND ".join(f'"{k}" = {cast(k)}' for k in shape.key)
    if kind == "delete":
        return f"DELETE FROM {table} WHERE {key_match}"  # noqa: S608
    if kind == "update":
        sets = ", ".join(f'"{c}" = {cast(c)}' for c in columns)
        return f"UPDATE {table} SET {sets} WHERE {key_match}"  # noqa: S608
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(cast(c) for c in columns)
    conflict = ", ".join(f'"{k}"' for k in shape.key)
    updates = [f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in shape.key]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    return f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT ({conflict}) {action}"  # noqa: S608
