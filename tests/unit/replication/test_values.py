"""Column values: PostgreSQL text output to Debezium-shaped JSON, and JSON to sink parameters."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchyard.errors import FatalError
from switchyard.replication.pgoutput import UNCHANGED_TOAST, Row
from switchyard.replication.values import (
    JsonConverter,
    Oid,
    SchemaMismatch,
    json_converter,
    json_converters,
    param_converter,
    row_to_json,
)

# -- text output -> JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("t", True), ("f", False)])
def test_bool(text: str, value: bool) -> None:
    assert json_converter(Oid.BOOL)(text) is value


def test_bool_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="'t' or 'f'"):
        json_converter(Oid.BOOL)("true")


@pytest.mark.parametrize(
    ("oid", "text", "value"),
    [
        (Oid.INT2, "-32768", -32768),
        (Oid.INT4, "2147483647", 2147483647),
        (Oid.INT8, "-9223372036854775808", -9223372036854775808),
        (Oid.OID, "4294967295", 4294967295),
    ],
)
def test_integers(oid: Oid, text: str, value: int) -> None:
    converted = json_converter(oid)(text)
    assert converted == value
    assert type(converted) is int


@pytest.mark.parametrize("oid", [Oid.FLOAT4, Oid.FLOAT8])
@pytest.mark.parametrize(
    ("text", "value"),
    [("1.5", 1.5), ("-0", -0.0), ("3.141592653589793", math.pi), ("1e+300", 1e300), ("0", 0.0)],
)
def test_finite_floats_are_numbers(oid: Oid, text: str, value: float) -> None:
    converted = json_converter(oid)(text)
    assert type(converted) is float
    assert converted == value
    assert math.copysign(1.0, converted) == math.copysign(1.0, value)


@pytest.mark.parametrize("oid", [Oid.FLOAT4, Oid.FLOAT8])
@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_floats_stay_strings(oid: Oid, text: str) -> None:
    assert json_converter(oid)(text) == text  # JSON has no NaN or infinities


@pytest.mark.parametrize(
    ("oid", "text"),
    [
        (Oid.NUMERIC, "12345678901234567890.000000000000000001"),  # beyond any float
        (Oid.NUMERIC, "12.3400"),  # scale kept
        (Oid.NUMERIC, "NaN"),
        (Oid.JSON, '{"b": 1,  "a": [1, 2]}'),
        (Oid.JSONB, '{"a": [1, 2], "b": 1}'),
        (Oid.TEXT, "naïve — ✓"),
        (Oid.VARCHAR, ""),
        (Oid.UUID, "3f1c2a7e-1111-4222-8333-444455556666"),
        (Oid.TIMESTAMPTZ, "2024-02-29 12:34:56.789012+00"),
        (1082, "2024-02-29"),  # date
        (1007, "{1,2,NULL}"),  # int4[]
        (16_400, "happy"),  # a user-defined enum
    ],
)
def test_everything_else_is_the_text_as_is(oid: int, text: str) -> None:
    convert = json_converter(oid)
    assert convert(text) is text


@pytest.mark.parametrize(
    ("text", "encoded"),
    [("\\x", ""), ("\\xdeadbeef", "3q2+7w=="), ("\\x00ff10", "AP8Q")],
)
def test_bytea_hex_output_becomes_base64(text: str, encoded: str) -> None:
    assert json_converter(Oid.BYTEA)(text) == encoded


def test_bytea_escape_output_is_refused() -> None:
    with pytest.raises(ValueError, match="bytea_output"):
        json_converter(Oid.BYTEA)("abc\\000")


def test_json_converters_follow_the_column_order() -> None:
    converters = json_converters([Oid.INT4, Oid.TEXT, Oid.BOOL])
    assert [c(t) for c, t in zip(converters, ["7", "x", "f"], strict=True)] == [7, "x", False]


def test_row_to_json_converts_keeps_nulls_and_omits_unchanged_toast() -> None:
    names = ("id", "note", "essay", "flag", "ratio")
    converters = json_converters([Oid.INT8, Oid.TEXT, Oid.TEXT, Oid.BOOL, Oid.FLOAT8])
    values: Row = ("42", None, UNCHANGED_TOAST, "t", "NaN")

    row = row_to_json(converters, values, names)

    assert row == {"id": 42, "note": None, "flag": True, "ratio": "NaN"}
    assert list(row) == ["id", "note", "flag", "ratio"]
    assert json.loads(json.dumps(row)) == row


@pytest.mark.parametrize(
    ("converters", "values", "names"),
    [([str, str], ("a",), ["x", "y"]), ([str], ("a", "b"), ["x"]), ([str], ("a",), ["x", "y"])],
)
def test_row_to_json_refuses_a_row_of_another_width(
    converters: list[JsonConverter], values: Row, names: list[str]
) -> None:
    with pytest.raises(ValueError, match="row of"):
        row_to_json(converters, values, names)


# -- JSON -> sink parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("boolean", True),
        ("boolean", False),
        ("smallint", -32768),
        ("smallint", 32767),
        ("integer", 2147483647),
        ("bigint", -9223372036854775808),
        ("bigint", 9223372036854775807),
        ("oid", 4294967295),
        ("real", 1.5),
        ("real", 2),
        ("double precision", -0.0),
        ("double precision", "NaN"),
        ("double precision", "-Infinity"),
        ("numeric", "12345678901234567890.000000000000000001"),
        ("numeric(12,4)", "12.3400"),
        ("numeric", 3),
        ("numeric", 2.5),
        ("jsonb", '{"a": 1}'),
        ("json", "[1, 2]"),
        ("uuid", "3f1c2a7e-1111-4222-8333-444455556666"),
        ("text", "naïve"),
        ("character varying(20)", "x"),
        ("timestamp with time zone", "2024-02-29 12:34:56.789012+00"),
        ("timestamp(3) with time zone", "2024-02-29 12:34:56.789+00"),
        ("integer[]", "{1,2}"),
        ("date", "2024-02-29"),
        ("mood", "happy"),  # a user-defined type
    ],
)
def test_values_of_the_right_json_type_pass_unchanged(type_name: str, value: object) -> None:
    assert param_converter(type_name)(value) is value


@pytest.mark.parametrize(
    "type_name", ["boolean", "integer", "real", "numeric", "bytea", "jsonb", "text", "uuid"]
)
def test_null_passes_for_every_type(type_name: str) -> None:
    assert param_converter(type_name)(None) is None


@pytest.mark.parametrize(
    ("encoded", "raw"), [("", b""), ("3q2+7w==", b"\xde\xad\xbe\xef"), ("AP8Q", b"\x00\xff\x10")]
)
def test_bytea_base64_becomes_bytes(encoded: str, raw: bytes) -> None:
    assert param_converter("bytea")(encoded) == raw


@pytest.mark.parametrize(
    ("type_name", "value", "got"),
    [
        ("boolean", 1, "number"),
        ("boolean", "t", "string"),
        ("integer", True, "boolean"),  # bool is an int subclass in Python, not in JSON
        ("integer", 1.0, "number"),
        ("integer", "1", "string"),
        ("integer", {"a": 1}, "object"),
        ("integer", 2147483648, "number"),
        ("smallint", -32769, "number"),
        ("bigint", 1 << 63, "number"),
        ("oid", -1, "number"),
        ("real", "1.5", "string"),
        ("double precision", False, "boolean"),
        ("double precision", [1.0], "array"),
        ("numeric", True, "boolean"),
        ("numeric(12,4)", {"scale": 4, "value": "AQ=="}, "object"),  # Debezium's precise mode
        ("bytea", "not base64!", "string"),
        ("bytea", "3q2+7w=", "string"),  # bad padding
        ("bytea", "3q2+7w==\n", "string"),
        ("bytea", "é", "string"),
        ("bytea", 12, "number"),
        ("bytea", [1, 2], "array"),
        ("jsonb", {"a": 1}, "object"),
        ("json", 1, "number"),
        ("uuid", 5, "number"),
        ("text", False, "boolean"),
        ("timestamp with time zone", 1_700_000_000_000, "number"),
        ("integer[]", [1, 2], "array"),
        ("text", b"x", "bytes"),
    ],
)
def test_wrong_json_type_is_a_schema_mismatch(type_name: str, value: object, got: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        param_converter(type_name)(value)
    message = str(caught.value)
    assert message.startswith(f"{type_name} column expects ")
    assert message.endswith(f"got {got}")


def test_schema_mismatch_message_never_shows_the_value() -> None:
    with pytest.raises(SchemaMismatch) as caught:
        param_converter("bytea")("secret-password-123")
    assert "secret" not in str(caught.value)


def test_schema_mismatch_is_a_fatal_value_error_built_like_one() -> None:
    error = SchemaMismatch("orders has no column x")
    assert isinstance(error, ValueError)
    assert isinstance(error, FatalError)
    assert error.code == "schema_mismatch"
    assert str(error) == "orders has no column x"


@given(st.binary(max_size=200))
def test_bytea_survives_source_json_and_sink(raw: bytes) -> None:
    text_output = "\\x" + raw.hex()  # what PostgreSQL writes with bytea_output = hex
    encoded = json_converter(Oid.BYTEA)(text_output)
    assert isinstance(encoded, str)
    assert encoded == base64.b64encode(raw).decode()
    assert param_converter("bytea")(encoded) == raw


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_finite_float8_survives_source_json_and_sink(number: float) -> None:
    converted = json_converter(Oid.FLOAT8)(repr(number))
    assert converted == number
    assert param_converter("double precision")(json.loads(json.dumps(converted))) == number


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_int8_survives_source_json_and_sink(number: int) -> None:
    converted = json_converter(Oid.INT8)(str(number))
    assert param_converter("bigint")(json.loads(json.dumps(converted))) == number
