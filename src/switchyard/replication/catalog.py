"""What the CDC source and sink read from a region database's catalog: the replicated tables'
columns, types and primary keys, and the slot's state."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True, slots=True)
class TableShape:
    name: str
    columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    type_names: tuple[str, ...]  # format_type(): what a CAST names
    key: tuple[str, ...]  # primary-key columns in index order

    def type_of(self, column: str) -> str:
        return self.type_names[self.columns.index(column)]


def table_shape(conn: psycopg.Connection[tuple[object, ...]], table: str) -> TableShape:
    rows = conn.execute(
        """
        SELECT a.attname, a.atttypid::int, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (table,),
    ).fetchall()
    key = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s::regclass AND i.indisprimary
        ORDER BY k.ord
        """,
        (table,),
    ).fetchall()
    if not key:
        raise ValueError(f"table {table} has no primary key; CDC needs one to key its events")
    return TableShape(
        name=table,
        columns=tuple(str(r[0]) for r in rows),
        type_oids=tuple(int(str(r[1])) for r in rows),
        type_names=tuple(str(r[2]) for r in rows),
        key=tuple(str(r[0]) for r in key),
    )


def slot_name(region: str) -> str:
    """Replication slot names allow lower-case letters, digits and underscores."""
    return "switchyard_" + "".join(c if c.isalnum() else "_" for c in region.lower())
