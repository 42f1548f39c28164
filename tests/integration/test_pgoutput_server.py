"""pgoutput v1 as PostgreSQL 15 writes it: a real slot's messages decode and convert back to
exactly what was written.

One module fixture writes two transactions to a fresh database on region-a's cluster and peeks
at the slot (``pg_logical_slot_peek_binary_changes`` returns the same message bytes the
walsender puts in XLogData). The slot is always dropped, then the database.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from switchyard.devenv.harness import Harness
from switchyard.replication.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Relation,
    Row,
    Truncate,
    Update,
    decode,
    format_lsn,
    parse_lsn,
    pg_us_to_unix_ms,
)
from switchyard.replication.values import Oid, json_converters, row_to_json

DDL = """
CREATE TABLE orders (
    id uuid NOT NULL,
    n integer NOT NULL,
    big bigint,
    flag boolean,
    ratio double precision,
    amount numeric(12, 4),
    note text,
    doc jsonb,
    blob bytea,
    at timestamptz,
    PRIMARY KEY (id, n)
);
-- Out of line and uncompressed, so a long note is TOASTed and an update that leaves it alone
-- sends it as 'u'.
ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL;
CREATE TABLE audit (id integer PRIMARY KEY, note text, amount numeric);
ALTER TABLE audit REPLICA IDENTITY FULL;
CREATE PUBLICATION pub FOR TABLE orders, audit;
"""

INSERT_ORDER = """
INSERT INTO orders (id, n, big, flag, ratio, amount, note, doc, blob, at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

ORDER_COLUMNS = ("id", "n", "big", "flag", "ratio", "amount", "note", "doc", "blob", "at")
ID_A = uuid.UUID("3f1c2a7e-1111-4222-8333-444455556666")
ID_B = uuid.UUID("0b6e5d1c-2222-4333-9444-555566667777")
AT = datetime(2024, 2, 29, 12, 34, 56, 789012, tzinfo=UTC)
DOC = {"a": [1, 2.5, None], "ü": {"nested": True}}
BLOB = bytes(range(256))
NOTE = "naïve — ✓ " * 2000  # ~24 kB, multi-byte UTF-8

ROW_A = (
    ID_A,
    1,
    9_000_000_000_123,
    True,
    math.pi,
    Decimal("12345.6789"),
    NOTE,
    Jsonb(DOC),
    BLOB,
    AT,
)
ROW_B = (ID_B, 7, -1, False, math.nan, Decimal("NaN"), "short", None, None, None)


@dataclass(frozen=True)
class Capture:
    peeked: list[tuple[str, int, bytes]]  # (lsn text, xid, pgoutput message) per change
    xids: tuple[int, int]
    relids: dict[str, int]
    wal_after: int
    started_ms: int
    ended_ms: int

    @property
    def messages(self) -> list[Message]:
        return [decode(data) for _, _, data in self.peeked]


def _write_two_transactions(conn: psycopg.Connection[TupleRow]) -> tuple[int, int]:
    current_xid = "SELECT pg_current_xact_id()::xid::text"
    with conn.transaction():
        xid1 = int(str(_one(conn, current_xid)))
        conn.execute(INSERT_ORDER, ROW_A)
        conn.execute(INSERT_ORDER, ROW_B)
        conn.execute("INSERT INTO audit VALUES (1, 'before', 1.50)")
    with conn.transaction():
        xid2 = int(str(_one(conn, current_xid)))
        conn.execute("UPDATE orders SET flag = false, ratio = 2.5 WHERE id = %s", (ID_A,))
        conn.execute("UPDATE orders SET n = 8 WHERE id = %s AND n = 7", (ID_B,))
        conn.execute("UPDATE audit SET note = 'after' WHERE id = 1")
        conn.execute("DELETE FROM orders WHERE id = %s", (ID_A,))
        conn.execute("DELETE FROM audit WHERE id = 1")
        conn.execute("SELECT pg_logical_emit_message(true, 'switchyard', '\\x00ff'::bytea)")
        conn.execute("TRUNCATE audit")
    return xid1, xid2


def _one(conn: psycopg.Connection[TupleRow], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def capture(harness: Harness) -> Iterator[Capture]:
    cluster = harness.region_dbs["region-a"]
    name = f"pgoutput_{uuid.uuid4().hex[:12]}"  # database and slot alike: unique per run
    cluster.fresh_database(name)
    try:
        with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute(DDL)
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
            try:
                started_ms = int(time.time() * 1000)
                xids = _write_two_transactions(conn)
                ended_ms = int(time.time() * 1000)
                peeked = conn.execute(
                    "SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_binary_changes("
                    "%s, NULL, NULL, 'proto_version', '1', 'publication_names', 'pub', "
                    "'messages', 'true')",
                    (name,),
                ).fetchall()
                relids = {
                    str(relname): int(oid)
                    for relname, oid in conn.execute(
                        "SELECT relname::text, oid::int FROM pg_class"
                        " WHERE relname IN ('orders', 'audit')"
                    )
                }
                wal_after = parse_lsn(str(_one(conn, "SELECT pg_current_wal_lsn()::text")))
            finally:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
        yield Capture(
            peeked=[(str(lsn), int(str(xid)), bytes(data)) for lsn, xid, data in peeked],
            xids=xids,
            relids=relids,
            wal_after=wal_after,
            started_ms=started_ms,
            ended_ms=ended_ms,
        )
    finally:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _converted(capture: Capture, relid: int, values: Row) -> dict[str, object]:
    relation = next(m for m in capture.messages if isinstance(m, Relation) and m.relid == relid)
    return row_to_json(
        json_converters(c.type_oid for c in relation.columns),
        values,
        [c.name for c in relation.columns],
    )


def test_the_stream_is_two_transactions_in_order(capture: Capture) -> None:
    kinds = [type(m).__name__ for m in capture.messages]
    assert kinds == [
        "Begin", "Relation", "Insert", "Insert", "Relation", "Insert", "Commit",
        "Begin", "Update", "Update", "Update", "Delete", "Delete", "LogicalMessage",
        # TRUNCATE invalidates the relation's cache entry, so pgoutput describes it again
        # mid-transaction: a consumer must take a Relation message anywhere in the stream.
        "Relation", "Truncate", "Commit",
    ]  # fmt: skip


def test_begin_and_commit_frame_each_transaction(capture: Capture) -> None:
    messages = capture.messages
    begins = [m for m in messages if isinstance(m, Begin)]
    commits = [m for m in messages if isinstance(m, Commit)]

    assert [b.xid for b in begins] == list(capture.xids)
    assert [xid for _, xid, _ in capture.peeked[:7]] == [capture.xids[0]] * 7
    for begin, commit in zip(begins, commits, strict=True):
        assert begin.final_lsn == commit.commit_lsn
        assert commit.end_lsn > commit.commit_lsn
        assert begin.commit_ts_us == commit.commit_ts_us
        assert commit.flags == 0
        commit_ms = pg_us_to_unix_ms(commit.commit_ts_us)
        assert capture.started_ms - 1000 <= commit_ms <= capture.ended_ms + 1000
    assert commits[0].end_lsn <= commits[1].commit_lsn
    assert commits[1].end_lsn <= capture.wal_after


def test_lsn_text_matches_postgres(capture: Capture) -> None:
    for lsn_text, _, _ in capture.peeked:
        assert format_lsn(parse_lsn(lsn_text)) == lsn_text


def test_relations_describe_the_published_tables(capture: Capture) -> None:
    relations = [m for m in capture.messages if isinstance(m, Relation)]
    assert relations[2] == relations[1]  # the audit table again, before its truncation
    types = (Oid.UUID, Oid.INT4, Oid.INT8, Oid.BOOL, Oid.FLOAT8, Oid.NUMERIC, Oid.TEXT,
             Oid.JSONB, Oid.BYTEA, Oid.TIMESTAMPTZ)  # fmt: skip
    numeric_12_4 = (12 << 16 | 4) + 4

    assert relations[:2] == [
        Relation(
            relid=capture.relids["orders"],
            namespace="public",
            name="orders",
            replica_identity="d",
            columns=tuple(
                Column(
                    name,
                    oid,
                    numeric_12_4 if name == "amount" else -1,
                    is_key=name in ("id", "n"),
                )
                for name, oid in zip(ORDER_COLUMNS, types, strict=True)
            ),
        ),
        Relation(
            relid=capture.relids["audit"],
            namespace="public",
            name="audit",
            replica_identity="f",
            # Under REPLICA IDENTITY FULL every column is part of the identity.
            columns=(
                Column("id", Oid.INT4, -1, is_key=True),
                Column("note", Oid.TEXT, -1, is_key=True),
                Column("amount", Oid.NUMERIC, -1, is_key=True),
            ),
        ),
    ]


def test_inserted_values_convert_to_what_was_written(capture: Capture) -> None:
    inserts = [m for m in capture.messages if isinstance(m, Insert)]
    orders = capture.relids["orders"]
    assert [i.relid for i in inserts] == [orders, orders, capture.relids["audit"]]

    row_a = _converted(capture, orders, inserts[0].new)
    assert json.loads(str(row_a.pop("doc"))) == DOC
    assert row_a == {
        "id": str(ID_A),
        "n": 1,
        "big": 9_000_000_000_123,
        "flag": True,
        "ratio": math.pi,
        "amount": "12345.6789",
        "note": NOTE,
        "blob": base64.b64encode(BLOB).decode(),
        "at": "2024-02-29 12:34:56.789012+00",
    }
    assert datetime.fromisoformat(str(inserts[0].new[9])) == AT

    row_b = _converted(capture, orders, inserts[1].new)
    assert row_b == {
        "id": str(ID_B),
        "n": 7,
        "big": -1,
        "flag": False,
        "ratio": "NaN",
        "amount": "NaN",
        "note": "short",
        "doc": None,
        "blob": None,
        "at": None,
    }
    assert _converted(capture, capture.relids["audit"], inserts[2].new) == {
        "id": 1,
        "note": "before",
        "amount": "1.50",
    }


def test_update_leaving_a_toasted_value_alone_omits_it(capture: Capture) -> None:
    update = next(m for m in capture.messages if isinstance(m, Update))

    assert update.old is None
    assert update.old_kind is None
    assert update.new[6] is UNCHANGED_TOAST
    after = _converted(capture, update.relid, update.new)
    assert "note" not in after
    assert (after["flag"], after["ratio"], after["n"]) == (False, 2.5, 1)


def test_update_of_a_key_sends_the_old_key(capture: Capture) -> None:
    update = [m for m in capture.messages if isinstance(m, Update)][1]

    assert update.old_kind == "K"
    assert update.old == (str(ID_B), "7", None, None, None, None, None, None, None, None)
    assert _converted(capture, update.relid, update.new)["n"] == 8


def test_replica_identity_full_sends_whole_old_rows(capture: Capture) -> None:
    audit = capture.relids["audit"]
    update = next(m for m in capture.messages if isinstance(m, Update) and m.relid == audit)
    delete = next(m for m in capture.messages if isinstance(m, Delete) and m.relid == audit)

    assert (update.old_kind, update.old, update.new) == (
        "O",
        ("1", "before", "1.50"),
        ("1", "after", "1.50"),
    )
    assert (delete.old_kind, delete.old) == ("O", ("1", "after", "1.50"))


def test_delete_sends_the_old_key(capture: Capture) -> None:
    delete = next(m for m in capture.messages if isinstance(m, Delete))

    assert delete.relid == capture.relids["orders"]
    assert delete.old_kind == "K"
    assert delete.old == (str(ID_A), "1", None, None, None, None, None, None, None, None)


def test_logical_message_and_truncate(capture: Capture) -> None:
    messages = capture.messages
    message = next(m for m in messages if isinstance(m, LogicalMessage))
    truncate = next(m for m in messages if isinstance(m, Truncate))

    assert (message.transactional, message.prefix, message.content) == (
        True,
        "switchyard",
        b"\x00\xff",
    )
    begin, commit = messages[7], messages[-1]
    assert isinstance(begin, Begin)
    assert isinstance(commit, Commit)
    assert begin.final_lsn > message.lsn > 0
    assert truncate == Truncate((capture.relids["audit"],), cascade=False, restart_identity=False)
