"""The CDC wire format: what the source encodes, the sink parses back to the same values; the
Debezium fields consumers read keep their meaning; anything else is a MalformedRecord."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.domain.cdc import Change, Chunk, Heartbeat, Op, Resume, TxSource
from switchyard.replication.envelope import (
    KIND_HEADER,
    ChangeRecord,
    MalformedRecord,
    encode_changes,
    encode_chunk,
    encode_heartbeat,
    encode_resume,
    parse,
)

TOPIC = "switchyard.cdc.eu-west"
DB = "switchyard_region"
NOW = 1_700_000_000_500

SOURCE = TxSource(
    region="eu-west",
    epoch=3,
    stream_id="7d3f4a52-1f0e-4a57-9d43-0c8f6f1d2b11",
    tx_seq=41,
    lsn=0x1_6B37_4D48,
    commit_ms=1_700_000_000_123,
    txid=7731,
)
SNAPSHOT_SOURCE = TxSource("eu-west", 3, SOURCE.stream_id, 42, 0x1_6B37_5000, NOW, None, "last")

INSERT = Change(
    "dialog_sessions",
    Op.CREATE,
    {"id": "0b8e"},
    None,
    {"id": "0b8e", "region": "eu-west", "epoch": 3, "meta": {"tags": ["a", "ü"]}},
)
UPDATE = Change(
    "dialog_turns",
    Op.UPDATE,
    {"session_id": "0b8e", "seq": 1},
    {"session_id": "0b8e", "seq": 1, "text": "hi"},
    {"session_id": "0b8e", "seq": 1, "text": "hello", "score": 0.5, "flag": None},
)
DELETE = Change(
    "dialog_turns",
    Op.DELETE,
    {"session_id": "0b8e", "seq": 2},
    {"session_id": "0b8e", "seq": 2, "text": "bye"},
    None,
)
CHUNK = Chunk(
    snapshot_id="snap-1",
    table="dialog_turns",
    after_key=["0b8e", 1],
    through_key=None,
    keep=(("0b8e", 2), ("0c01", 7)),
    last=True,
)


_MISSING = object()  # a field to remove


def kind(name: str) -> dict[str, bytes]:
    return {KIND_HEADER: name.encode()}


def encoded(changes: list[Change], *, extra: int = 0) -> list[tuple[bytes, bytes]]:
    return encode_changes(SOURCE, changes, topic=TOPIC, db=DB, now_ms=NOW, extra=extra)


def change_value(**overrides: Any) -> dict[str, Any]:
    """The JSON of UPDATE's record, with ``overrides`` (``_MISSING`` removes the field)."""
    value: dict[str, Any] = json.loads(encoded([UPDATE])[0][1])
    value.update(overrides)
    for name in [n for n, v in overrides.items() if v is _MISSING]:
        del value[name]
    return value


def with_source(**fields: Any) -> dict[str, Any]:
    body = change_value()
    body["source"].update(fields)
    for name in [n for n, v in fields.items() if v is _MISSING]:
        del body["source"][name]
    return body


UPDATE_KEY = json.dumps(UPDATE.key).encode()


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


# -- round trips ----------------------------------------------------------------------------


def test_each_change_of_a_transaction_parses_back_with_its_place_in_it() -> None:
    changes = [INSERT, UPDATE, DELETE]
    parsed = [parse({}, key, value) for key, value in encoded(changes)]
    assert parsed == [
        ChangeRecord(SOURCE, index, 3, change) for index, change in enumerate(changes, 1)
    ]


def test_a_snapshot_chunk_closes_its_transaction_and_parses_back() -> None:
    rows = [
        Change("dialog_turns", Op.READ, {"session_id": "0b8e", "seq": 3}, None, {"seq": 3}),
    ]
    records = encode_changes(SNAPSHOT_SOURCE, rows, topic=TOPIC, db=DB, now_ms=NOW, extra=1)
    closing = encode_chunk(SNAPSHOT_SOURCE, CHUNK, topic=TOPIC, db=DB, index=len(records) + 1)

    assert parse({}, *records[0]) == ChangeRecord(SNAPSHOT_SOURCE, 1, 2, rows[0])
    assert parse(kind("chunk"), None, closing) == ChangeRecord(SNAPSHOT_SOURCE, 2, 2, None, CHUNK)


@pytest.mark.parametrize(
    "chunk",
    [
        CHUNK,
        Chunk("snap-2", "dialog_sessions", None, ["0b8e"], (), last=False),
        Chunk("snap-3", "dialog_sessions", None, None, (), last=True),
    ],
    ids=["middle-and-last", "first-chunk", "whole-table"],
)
def test_chunk_bounds_round_trip(chunk: Chunk) -> None:
    value = encode_chunk(SNAPSHOT_SOURCE, chunk, topic=TOPIC, db=DB, index=1)
    parsed = parse(kind("chunk"), None, value)
    assert isinstance(parsed, ChangeRecord)
    assert parsed.chunk == chunk


def test_a_heartbeat_round_trips() -> None:
    beat = Heartbeat("eu-west", 3, SOURCE.stream_id, 41, 0x1_6B37_4D48, NOW)
    assert parse(kind("heartbeat"), None, encode_heartbeat(beat)) == beat


@pytest.mark.parametrize(
    "marker",
    [
        Resume("eu-west", 3, SOURCE.stream_id, 41, 0x1_6B37_4D48, NOW, False, None),
        Resume("eu-west", 4, SOURCE.stream_id, 0, 0x1_7000_0000, NOW, True, "snap-0"),
    ],
    ids=["restart", "new-stream"],
)
def test_a_resume_marker_round_trips(marker: Resume) -> None:
    assert parse(kind("resume"), None, encode_resume(marker)) == marker


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"))
)
row_images = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=6,
)


@settings(max_examples=100)
@given(
    before=row_images, after=row_images, key=st.dictionaries(st.text(), json_scalars, min_size=1)
)
def test_any_row_image_round_trips(
    before: dict[str, Any], after: dict[str, Any], key: dict[str, Any]
) -> None:
    change = Change("dialog_turns", Op.UPDATE, key, before, after)
    [(raw_key, value)] = encoded([change])
    assert parse({}, raw_key, value) == ChangeRecord(SOURCE, 1, 1, change)


# -- the Debezium fields consumers read -----------------------------------------------------


def test_row_changes_carry_debeziums_fields() -> None:
    records = encoded([INSERT, UPDATE, DELETE])
    keys = [json.loads(key) for key, _ in records]
    values = [json.loads(value) for _, value in records]

    assert keys == [INSERT.key, UPDATE.key, DELETE.key]
    assert [(v["op"], v["before"], v["after"]) for v in values] == [
        ("c", None, INSERT.after),
        ("u", UPDATE.before, UPDATE.after),
        ("d", DELETE.before, None),
    ]
    for value in values:
        source = value["source"]
        assert source["lsn"] == SOURCE.lsn
        assert source["txId"] == SOURCE.txid
        assert source["ts_ms"] == SOURCE.commit_ms  # the commit's time ...
        assert value["ts_ms"] == NOW  # ... the envelope's is when it was published
        assert source["snapshot"] == "false"
        assert source["schema"] == "public"
        assert source["db"] == DB
        assert source["name"] == TOPIC
        assert value["transaction"]["id"] == f"{SOURCE.txid}:{SOURCE.lsn}"
        assert value["transaction"]["event_count"] == 3
    # One transaction over two tables: each record names its own table, and counts its
    # place in the transaction and in its table.
    assert [v["source"]["table"] for v in values] == [
        "dialog_sessions",
        "dialog_turns",
        "dialog_turns",
    ]
    assert [v["transaction"]["total_order"] for v in values] == [1, 2, 3]
    assert [v["transaction"]["data_collection_order"] for v in values] == [1, 1, 2]


def test_a_snapshot_read_has_no_txid_and_counts_the_closing_chunk_record() -> None:
    row = Change("dialog_turns", Op.READ, {"seq": 3}, None, {"seq": 3})
    [(_, raw)] = encode_changes(SNAPSHOT_SOURCE, [row], topic=TOPIC, db=DB, now_ms=NOW, extra=1)
    value = json.loads(raw)
    assert value["op"] == "r"
    assert value["source"]["txId"] is None
    assert value["source"]["snapshot"] == "last"
    assert value["transaction"]["id"] == f"snapshot:{SNAPSHOT_SOURCE.lsn}"
    assert (value["transaction"]["total_order"], value["transaction"]["event_count"]) == (1, 2)


# -- malformed records -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "value", "words"),
    [
        pytest.param({}, None, "no value", id="no-value"),
        pytest.param({}, b"{not json", "not JSON", id="not-json"),
        pytest.param({}, b"", "not JSON", id="empty"),
        pytest.param({}, b"[1, 2]", "not a JSON object", id="array"),
        pytest.param({}, b'"text"', "not a JSON object", id="string"),
        pytest.param(kind("heartbeat"), b"42", "not a JSON object", id="heartbeat-number"),
        pytest.param(kind("snapshot"), b"{}", "unknown record kind 'snapshot'", id="unknown-kind"),
    ],
)
def test_a_value_that_is_not_an_envelope_is_malformed(
    headers: dict[str, bytes], value: bytes | None, words: str
) -> None:
    with pytest.raises(MalformedRecord, match=words):
        parse(headers, UPDATE_KEY, value)


@pytest.mark.parametrize("field", ["region", "epoch", "stream", "txSeq", "lsn", "ts_ms", "table"])
def test_a_change_missing_a_source_field_is_malformed(field: str) -> None:
    with pytest.raises(MalformedRecord, match=field):
        parse({}, UPDATE_KEY, dumps(with_source(**{field: _MISSING})))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        pytest.param({"region": 7}, "region is not a string", id="region-number"),
        pytest.param({"stream": None}, "stream is not a string", id="stream-null"),
        pytest.param({"epoch": "3"}, "epoch is not an integer", id="epoch-text"),
        pytest.param({"txSeq": True}, "txSeq is not an integer", id="txseq-bool"),
        pytest.param({"lsn": 1.5}, "lsn is not an integer", id="lsn-float"),
        pytest.param({"ts_ms": None}, "ts_ms is not an integer", id="commit-time-null"),
        pytest.param({"table": ["t"]}, "table is not a string", id="table-list"),
    ],
)
def test_a_change_with_a_source_field_of_the_wrong_type_is_malformed(
    fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(MalformedRecord, match=words):
        parse({}, UPDATE_KEY, dumps(with_source(**fields)))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(change_value(source=_MISSING), "source is not an object", id="no-source"),
        pytest.param(change_value(source=[1]), "source is not an object", id="source-list"),
        pytest.param(change_value(transaction=_MISSING), "transaction is not", id="no-transaction"),
        pytest.param(change_value(transaction=7), "transaction is not", id="transaction-number"),
        pytest.param(change_value(before=[1]), "before is not an object", id="before-list"),
        pytest.param(change_value(after="x"), "after is not an object", id="after-text"),
        pytest.param(change_value(op="x"), "'x'", id="unknown-op"),
        pytest.param(change_value(op=_MISSING), "None", id="no-op"),
    ],
)
def test_a_change_with_a_bad_block_is_malformed(body: dict[str, Any], words: str) -> None:
    with pytest.raises(MalformedRecord, match=words):
        parse({}, UPDATE_KEY, dumps(body))


@pytest.mark.parametrize(
    ("total_order", "event_count"),
    [(0, 3), (4, 3), (-1, 3), (1, 0)],
)
def test_a_position_outside_the_transaction_is_malformed(
    total_order: int, event_count: int
) -> None:
    body = change_value(transaction={"total_order": total_order, "event_count": event_count})
    with pytest.raises(
        MalformedRecord, match=f"total_order {total_order} outside 1..{event_count}"
    ):
        parse({}, UPDATE_KEY, dumps(body))


@pytest.mark.parametrize("field", ["total_order", "event_count"])
def test_a_position_that_is_not_a_number_is_malformed(field: str) -> None:
    position: dict[str, Any] = {"total_order": 1, "event_count": 1}
    position[field] = "1"
    with pytest.raises(MalformedRecord, match=f"{field} is not an integer"):
        parse({}, UPDATE_KEY, dumps(change_value(transaction=position)))


@pytest.mark.parametrize(
    ("op", "missing", "words"),
    [
        ("d", "before", "a delete without a before image"),
        ("c", "after", "op c without an after image"),
        ("u", "after", "op u without an after image"),
        ("r", "after", "op r without an after image"),
    ],
)
def test_a_change_without_the_image_its_op_needs_is_malformed(
    op: str, missing: str, words: str
) -> None:
    body = change_value(op=op)
    body[missing] = None
    with pytest.raises(MalformedRecord, match=words):
        parse({}, UPDATE_KEY, dumps(body))


@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param(None, "without a key", id="no-key"),
        pytest.param(b"{oops", "key is not JSON", id="not-json"),
        pytest.param(b"{}", "key is not a non-empty JSON object", id="empty-object"),
        pytest.param(b"[1]", "key is not a non-empty JSON object", id="array"),
    ],
)
def test_a_row_change_needs_its_primary_key(key: bytes | None, words: str) -> None:
    with pytest.raises(MalformedRecord, match=words):
        parse({}, key, dumps(change_value()))


def _chunk_body(**chunk_fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        encode_chunk(SNAPSHOT_SOURCE, CHUNK, topic=TOPIC, db=DB, index=1)
    )
    body["chunk"].update(chunk_fields)
    for name in [n for n, v in chunk_fields.items() if v is _MISSING]:
        del body["chunk"][name]
    return body


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param({**_chunk_body(), "chunk": None}, "chunk is not an object", id="no-chunk"),
        pytest.param(_chunk_body(snapshot=_MISSING), "snapshot", id="no-snapshot-id"),
        pytest.param(_chunk_body(table=3), "table is not a string", id="table-number"),
        pytest.param(_chunk_body(after="k"), "bound is not a key list", id="bound-text"),
        pytest.param(_chunk_body(through={"a": 1}), "bound is not a key", id="bound-object"),
        pytest.param(_chunk_body(keep=[1, 2]), "keep is not a list of keys", id="keep-flat"),
        pytest.param(_chunk_body(keep="k"), "keep is not a list of keys", id="keep-text"),
        pytest.param({**_chunk_body(), "source": "x"}, "source is not an object", id="source"),
        pytest.param(
            {**_chunk_body(), "transaction": {"total_order": 2, "event_count": 1}},
            "outside 1..1",
            id="position",
        ),
    ],
)
def test_a_bad_chunk_record_is_malformed(body: dict[str, Any], words: str) -> None:
    with pytest.raises(MalformedRecord, match=words):
        parse(kind("chunk"), None, dumps(body))


_BEAT = json.loads(encode_heartbeat(Heartbeat("eu-west", 3, "s", 41, 900, NOW)))
_RESUME = json.loads(encode_resume(Resume("eu-west", 3, "s", 41, 900, NOW, False, None)))


@pytest.mark.parametrize("record_kind", ["heartbeat", "resume"])
@pytest.mark.parametrize("field", ["region", "epoch", "stream", "txSeq", "lsn", "ts_ms"])
def test_a_control_record_missing_a_field_is_malformed(record_kind: str, field: str) -> None:
    body = dict(_BEAT if record_kind == "heartbeat" else _RESUME)
    del body[field]
    with pytest.raises(MalformedRecord, match=f"{record_kind} record: .*{field}"):
        parse(kind(record_kind), None, dumps(body))


@pytest.mark.parametrize("record_kind", ["heartbeat", "resume"])
@pytest.mark.parametrize(
    ("field", "bad"), [("stream", 1), ("epoch", "3"), ("txSeq", False), ("lsn", 9.5)]
)
def test_a_control_record_with_a_field_of_the_wrong_type_is_malformed(
    record_kind: str, field: str, bad: Any
) -> None:
    body = dict(_BEAT if record_kind == "heartbeat" else _RESUME)
    body[field] = bad
    with pytest.raises(MalformedRecord, match=f"{field} is not"):
        parse(kind(record_kind), None, dumps(body))
