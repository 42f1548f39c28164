"""pgoutput v1 and the streaming replication framing, decoded from hand-built bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard.errors import FatalError
from switchyard.replication.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    Keepalive,
    LogicalMessage,
    OldKind,
    Origin,
    ProtocolError,
    Relation,
    Row,
    Truncate,
    Type,
    Update,
    XLogData,
    decode,
    format_lsn,
    parse_copy_data,
    parse_lsn,
    pg_now_us,
    pg_us_to_unix_ms,
    standby_status_update,
)

# -- encoders: the server's side of the protocol, written out by hand -------------------------


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def tuple_data(values: Row) -> bytes:
    out = struct.pack("!H", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED_TOAST:
            out += b"u"
        else:
            raw = value.encode()
            out += b"t" + struct.pack("!I", len(raw)) + raw
    return out


def insert_msg(relid: int, new: Row) -> bytes:
    return b"I" + struct.pack("!I", relid) + b"N" + tuple_data(new)


def update_msg(relid: int, new: Row, old: Row | None = None, kind: bytes = b"") -> bytes:
    old_part = b"" if old is None else kind + tuple_data(old)
    return b"U" + struct.pack("!I", relid) + old_part + b"N" + tuple_data(new)


def delete_msg(relid: int, old: Row, kind: bytes) -> bytes:
    return b"D" + struct.pack("!I", relid) + kind + tuple_data(old)


LSN = 0x16_B374_D848
TS = 789_012_345_678_901  # microseconds since 2000-01-01: 2025-01-01 or so

# -- streaming replication framing -----------------------------------------------------------


def test_xlogdata_header_is_parsed_and_the_payload_is_not_copied() -> None:
    payload = insert_msg(16384, ("1",))
    frame = b"w" + struct.pack("!QQq", LSN, LSN + 100, TS) + payload

    parsed = parse_copy_data(frame)

    assert isinstance(parsed, XLogData)
    assert (parsed.data_start, parsed.wal_end, parsed.send_time) == (LSN, LSN + 100, TS)
    assert isinstance(parsed.payload, memoryview)
    assert parsed.payload.obj is frame
    assert decode(parsed.payload) == Insert(16384, ("1",))


def test_xlogdata_from_a_memoryview_frame() -> None:
    frame = memoryview(b"w" + struct.pack("!QQq", 1, 2, 3) + b"B" + struct.pack("!QqI", 9, 8, 7))
    parsed = parse_copy_data(frame)
    assert isinstance(parsed, XLogData)
    assert decode(parsed.payload) == Begin(9, 8, 7)


@pytest.mark.parametrize("flag", [0, 1])
def test_keepalive(flag: int) -> None:
    parsed = parse_copy_data(b"k" + struct.pack("!QqB", LSN, TS, flag))
    assert parsed == Keepalive(wal_end=LSN, send_time=TS, reply_requested=bool(flag))


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"", "empty"),
        (b"x" + bytes(24), r"'x' \(0x78\)"),
        (b"w" + bytes(23), "truncated"),
        (b"k" + bytes(16), "keepalive of 17 bytes, expected 18"),
        (b"k" + bytes(18), "keepalive of 19 bytes, expected 18"),
    ],
)
def test_bad_copy_data_is_a_protocol_error(frame: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_copy_data(frame)


def test_standby_status_update_layout() -> None:
    message = standby_status_update(0x10, 0x20, 0x30, now_us=TS, reply=True)

    assert len(message) == 34
    assert message[:1] == b"r"
    assert struct.unpack("!QQQq?", message[1:]) == (0x10, 0x20, 0x30, TS, True)
    assert standby_status_update(1, 2, 3, now_us=4)[-1] == 0  # no reply asked by default
    assert message.hex() == (
        "72" + "0000000000000010" + "0000000000000020" + f"0000000000000030{TS:016x}" + "01"
    )


def test_postgres_epoch_conversions() -> None:
    assert pg_now_us(946_684_800.0) == 0
    assert pg_now_us(946_684_801.25) == 1_250_000
    assert pg_now_us(946_684_799.0) == -1_000_000
    assert pg_us_to_unix_ms(0) == 946_684_800_000
    assert pg_us_to_unix_ms(1_999) == 946_684_800_001  # floored to the millisecond
    assert pg_us_to_unix_ms(pg_now_us(1_700_000_000.123)) == 1_700_000_000_123


@pytest.mark.parametrize(
    ("lsn", "text"),
    [
        (0x16_B374_D848, "16/B374D848"),
        (0, "0/0"),
        (0x1_0000_0000, "1/0"),
        ((1 << 64) - 1, "FFFFFFFF/FFFFFFFF"),
    ],
)
def test_lsn_text_both_ways(lsn: int, text: str) -> None:
    assert format_lsn(lsn) == text
    assert parse_lsn(text) == lsn
    assert parse_lsn(text.lower()) == lsn


@pytest.mark.parametrize(
    "text",
    ["", "16", "16/", "/B374D848", "16/B374D848/1", "G/0", "123456789/0", " 1/0", "+1/0", "1/-0"],
)
def test_parse_lsn_refuses_what_is_not_an_lsn(text: str) -> None:
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn(text)


@pytest.mark.parametrize("lsn", [-1, 1 << 64])
def test_format_lsn_refuses_out_of_range(lsn: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        format_lsn(lsn)


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lsn_round_trip(lsn: int) -> None:
    assert parse_lsn(format_lsn(lsn)) == lsn


# -- transaction messages ---------------------------------------------------------------------


def test_begin() -> None:
    assert decode(b"B" + struct.pack("!QqI", LSN, TS, 4_000_000_000)) == Begin(
        final_lsn=LSN, commit_ts_us=TS, xid=4_000_000_000
    )


def test_commit() -> None:
    message = b"C" + struct.pack("!BQQq", 0, LSN, LSN + 48, TS)
    assert decode(message) == Commit(flags=0, commit_lsn=LSN, end_lsn=LSN + 48, commit_ts_us=TS)


def test_origin() -> None:
    message = b"O" + struct.pack("!Q", LSN) + cstr("switchyard_sink_région")
    assert decode(message) == Origin(commit_lsn=LSN, name="switchyard_sink_région")


def test_relation_with_a_composite_key() -> None:
    message = (
        b"R"
        + struct.pack("!I", 16390)
        + cstr("public")
        + cstr("orders")
        + b"d"
        + struct.pack("!H", 3)
        + b"\x01" + cstr("tenant") + struct.pack("!Ii", 2950, -1)
        + b"\x01" + cstr("id") + struct.pack("!Ii", 20, -1)
        + b"\x00" + cstr("amount") + struct.pack("!Ii", 1700, (12 << 16 | 4) + 4)
    )  # fmt: skip

    assert decode(message) == Relation(
        relid=16390,
        namespace="public",
        name="orders",
        replica_identity="d",
        columns=(
            Column("tenant", 2950, -1, is_key=True),
            Column("id", 20, -1, is_key=True),
            Column("amount", 1700, 786440, is_key=False),
        ),
    )


def test_relation_in_pg_catalog_with_no_columns() -> None:
    message = b"R" + struct.pack("!I", 1) + cstr("") + cstr("t") + b"f" + struct.pack("!H", 0)
    assert decode(message) == Relation(1, "", "t", "f", ())


def test_type() -> None:
    message = b"Y" + struct.pack("!I", 16400) + cstr("public") + cstr("mood")
    assert decode(message) == Type(type_oid=16400, namespace="public", name="mood")


@pytest.mark.parametrize(
    ("options", "cascade", "restart"),
    [(0, False, False), (1, True, False), (2, False, True), (3, True, True)],
)
def test_truncate(options: int, cascade: bool, restart: bool) -> None:
    message = b"T" + struct.pack("!IB", 2, options) + struct.pack("!II", 16384, 4_294_967_295)
    assert decode(message) == Truncate((16384, 4_294_967_295), cascade, restart)


@pytest.mark.parametrize(("flags", "transactional"), [(1, True), (0, False)])
def test_logical_message(flags: int, transactional: bool) -> None:
    content = b"\x00binary\xff"
    message = (
        b"M" + struct.pack("!BQ", flags, LSN) + cstr("switchyard") + struct.pack("!I", 8) + content
    )
    assert decode(message) == LogicalMessage(transactional, LSN, "switchyard", content)


# -- row messages -----------------------------------------------------------------------------


def test_insert_distinguishes_null_empty_text_and_unchanged_toast() -> None:
    row: Row = ("42", None, "", UNCHANGED_TOAST, "naïve — ✓", '{"a": [1, 2]}')
    decoded = decode(insert_msg(16384, row))

    assert decoded == Insert(relid=16384, new=row)
    assert isinstance(decoded, Insert)
    assert decoded.new[3] is UNCHANGED_TOAST
    assert repr(UNCHANGED_TOAST) == "UNCHANGED_TOAST"


def test_insert_whose_last_column_is_null_or_unchanged() -> None:
    # The last value is one byte long: the decoder must not read past the message.
    assert decode(insert_msg(1, ("a", None))) == Insert(1, ("a", None))
    assert decode(insert_msg(1, (UNCHANGED_TOAST,))) == Insert(1, (UNCHANGED_TOAST,))
    assert decode(insert_msg(1, ())) == Insert(1, ())


def test_update_without_an_old_tuple() -> None:
    new: Row = ("1", "after", UNCHANGED_TOAST)
    assert decode(update_msg(7, new)) == Update(relid=7, old=None, old_kind=None, new=new)


def test_update_of_a_key_sends_the_old_key_with_other_columns_null() -> None:
    old: Row = ("1", None, None)
    new: Row = ("2", "after", UNCHANGED_TOAST)
    decoded = decode(update_msg(7, new, old, b"K"))
    assert decoded == Update(relid=7, old=old, old_kind="K", new=new)


def test_update_under_replica_identity_full_sends_the_whole_old_row() -> None:
    old: Row = ("1", "before", None)
    new: Row = ("1", "after", None)
    assert decode(update_msg(7, new, old, b"O")) == Update(7, old, "O", new)


@pytest.mark.parametrize("old_kind", ["K", "O"])
def test_delete(old_kind: OldKind) -> None:
    old: Row = ("1", None if old_kind == "K" else "gone")
    decoded = decode(delete_msg(7, old, old_kind.encode()))
    assert decoded == Delete(relid=7, old=old, old_kind=old_kind)


def test_decode_takes_a_memoryview_slice() -> None:
    framed = b"xx" + insert_msg(3, ("v",)) + b"yy"
    assert decode(memoryview(framed)[2:-2]) == Insert(3, ("v",))


row_values = st.lists(st.one_of(st.none(), st.just(UNCHANGED_TOAST), st.text()), max_size=40).map(
    tuple
)


@given(row_values, st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_insert_round_trip(row: Row, relid: int) -> None:
    assert decode(insert_msg(relid, row)) == Insert(relid, row)


@given(row_values, row_values, st.sampled_from(["K", "O"]))
def test_update_and_delete_round_trip(old: Row, new: Row, old_kind: OldKind) -> None:
    kind = old_kind.encode()
    assert decode(update_msg(5, new, old, kind)) == Update(5, old, old_kind, new)
    assert decode(delete_msg(5, old, kind)) == Delete(5, old, old_kind)


# -- what is not pgoutput v1 ------------------------------------------------------------------


def test_unknown_message_type_names_the_byte() -> None:
    with pytest.raises(ValueError, match=r"unknown pgoutput message type 'Z' \(0x5a\)"):
        decode(b"Z\x00\x00")
    with pytest.raises(ValueError, match=r"0xff"):
        decode(b"\xff")


def test_messages_of_newer_protocol_versions_say_so() -> None:
    with pytest.raises(ProtocolError, match=r"'S' .*streaming"):
        decode(b"S" + bytes(5))


def test_protocol_errors_are_fatal() -> None:
    assert issubclass(ProtocolError, FatalError)
    assert issubclass(ProtocolError, ValueError)


GOOD_INSERT = insert_msg(9, ("abc", None))


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (b"", "empty"),
        (GOOD_INSERT[:-1], "truncated"),  # cut inside the last value's kind byte
        (GOOD_INSERT[:-5], "truncated"),  # cut inside a text value
        (GOOD_INSERT + b"\x00", "1 bytes left over"),
        (
            b"I" + struct.pack("!I", 9) + b"N" + struct.pack("!H", 1) + b"t\xff\xff\xff\xff",
            "truncated",
        ),
        (b"I" + struct.pack("!I", 9) + b"N" + struct.pack("!H", 1) + b"x", r"kind 'x'"),
        (b"I" + struct.pack("!I", 9) + b"N" + struct.pack("!H", 1) + b"b", "binary"),
        (b"I" + struct.pack("!I", 9) + b"K" + tuple_data(("1",)), "Insert without a new tuple"),
        (b"I" + struct.pack("!I", 9) + b"N", "truncated"),
        (b"I" + struct.pack("!I", 9) + b"N" + b"\x00\x01t\x00\x00\x00\x01\xff", "not UTF-8"),
        (b"I\x00", "Insert without a new tuple"),
        (b"U" + struct.pack("!I", 9) + b"K" + tuple_data(("1",)), "Update without a new tuple"),
        (b"U" + struct.pack("!I", 9) + b"X" + tuple_data(("1",)), "Update without a new tuple"),
        (delete_msg(9, ("1",), b"N"), "Delete without an old tuple"),
        (b"B" + bytes(19), "truncated"),
        (b"C" + bytes(26), "1 bytes left over"),
        (b"R" + struct.pack("!I", 1) + b"public", "terminating NUL"),
        (b"T" + struct.pack("!IB", 2, 0) + struct.pack("!I", 1), "truncated"),
        (b"M" + struct.pack("!BQ", 1, 0) + cstr("p") + struct.pack("!I", 5) + b"abc", "truncated"),
    ],
)
def test_malformed_messages_are_protocol_errors(message: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode(message)
