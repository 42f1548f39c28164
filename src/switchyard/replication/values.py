"""Column values between PostgreSQL's text output, CDC JSON, and the sink's query parameters.

Pure. The JSON side follows Debezium's defaults, so consumers of either read the same shapes:

====================  ======================================  ==============================
PostgreSQL type       JSON value                              Debezium
====================  ======================================  ==============================
boolean               true / false                            BOOLEAN
int2, int4, int8, oid number                                  INT16 / INT32 / INT64
float4, float8        number; "NaN", "Infinity", "-Infinity"  FLOAT32 / FLOAT64
                      as strings (JSON has no such numbers)
numeric               string, exact ("12.3400")               decimal.handling.mode=string
json, jsonb           string holding the JSON text            io.debezium.data.Json
bytea                 string, base64                          binary.handling.mode=base64
anything else         string, PostgreSQL's text output as is  (uuid, text, timestamptz, date,
                                                              arrays as '{1,2}', ...)
====================  ======================================  ==============================

Converters are chosen once per column (``json_converter``, ``param_converter``) so the per-row
work is one call per value. ``None`` (SQL NULL) never reaches a converter.
"""

from __future__ import annotations

import binascii
import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from switchyard.errors import FatalError
from switchyard.replication.pgoutput import UNCHANGED_TOAST, TupleValue

JsonConverter = Callable[[str], object]
ParamConverter = Callable[[object], object]


class Oid(enum.IntEnum):
    """The built-in type OIDs that have a converter of their own (pg_type.oid)."""

    BOOL = 16
    BYTEA = 17
    INT8 = 20
    INT2 = 21
    INT4 = 23
    TEXT = 25
    OID = 26
    JSON = 114
    FLOAT4 = 700
    FLOAT8 = 701
    VARCHAR = 1043
    TIMESTAMPTZ = 1184
    NUMERIC = 1700
    UUID = 2950
    JSONB = 3802


class SchemaMismatch(FatalError, ValueError):  # noqa: N818 - the name the sink catches
    """A CDC value does not fit the sink's column type; the sink parks the event.

    Built with one message, like any ValueError. The converters' messages name the column type
    and the JSON type received, never the value (it may be personal data).
    """

    code = "schema_mismatch"


def _mismatch(type_name: str, expected: str, value: object) -> SchemaMismatch:
    return SchemaMismatch(f"{type_name} column expects {expected}, got {_json_type(value)}")


# -- PostgreSQL text output -> JSON -----------------------------------------------------------


def _bool(text: str) -> bool:
    if text == "t":
        return True
    if text == "f":
        return False
    raise ValueError(f"boolean text output is 't' or 'f', not {text[:8]!r}")


def _float(text: str) -> float | str:
    number = float(text)
    # x - x is NaN (truthy) exactly when x is NaN or infinite: keep PostgreSQL's spelling.
    return text if number - number else number


def _bytea_base64(text: str) -> str:
    if not text.startswith("\\x"):
        raise ValueError("bytea text output is not in hex format; keep bytea_output = 'hex'")
    return binascii.b2a_base64(binascii.a2b_hex(text[2:]), newline=False).decode("ascii")


_JSON_CONVERTERS: Final[Mapping[int, JsonConverter]] = MappingProxyType(
    {
        Oid.BOOL: _bool,
        Oid.INT2: int,
        Oid.INT4: int,
        Oid.INT8: int,
        Oid.OID: int,
        Oid.FLOAT4: _float,
        Oid.FLOAT8: _float,
        Oid.BYTEA: _bytea_base64,
    }
)


def json_converter(type_oid: int) -> JsonConverter:
    """The function from a column's text output to its JSON value; ``str`` (identity) for
    every type without a dedicated representation, numeric and json/jsonb included."""
    return _JSON_CONVERTERS.get(type_oid, str)


def json_converters(type_oids: Iterable[int]) -> tuple[JsonConverter, ...]:
    """``json_converter`` for each column of a relation, in order."""
    return tuple(json_converter(oid) for oid in type_oids)


def row_to_json(
    converters: Sequence[JsonConverter],
    values: Sequence[TupleValue],
    column_names: Sequence[str],
) -> dict[str, object]:
    """One row as a JSON-ready dict, column name to value, in column order.

    A column whose value is ``UNCHANGED_TOAST`` is left out, not set to null: PostgreSQL does
    not resend a TOASTed value an update did not change, so an update event's ``after`` lacks
    such columns and a consumer must keep the value it has (Debezium instead writes a
    placeholder string). SQL NULL becomes ``None``.
    """
    # One length check up front: zip(strict=True) costs more per row, measurably.
    if not len(converters) == len(values) == len(column_names):
        raise ValueError(
            f"row of {len(values)} values for {len(converters)} converters"
            f" and {len(column_names)} columns"
        )
    row: dict[str, object] = {}
    for convert, value, name in zip(converters, values, column_names):  # noqa: B905
        if value is None:
            row[name] = None
        elif value is not UNCHANGED_TOAST:
            # Most columns are text as is: skip the call rather than make str() return it.
            row[name] = value if convert is str else convert(value)
    return row


# -- JSON -> the sink's query parameters ------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _boolean(type_name: str) -> ParamConverter:
    def convert(value: object) -> object:
        if value is None or type(value) is bool:
            return value
        raise _mismatch(type_name, "a boolean", value)

    return convert


def _integer(type_name: str, low: int, high: int) -> ParamConverter:
    def convert(value: object) -> object:
        # ``type(...) is int`` keeps booleans out (bool subclasses int).
        if value is None or (type(value) is int and low <= value <= high):
            return value
        raise _mismatch(type_name, f"an integer from {low} to {high}", value)

    return convert


_NON_FINITE: Final = frozenset({"NaN", "Infinity", "-Infinity"})


def _floating(type_name: str) -> ParamConverter:
    def convert(value: object) -> object:
        kind = type(value)
        if value is None or kind is float or kind is int or (kind is str and value in _NON_FINITE):
            return value
        raise _mismatch(type_name, 'a number or "NaN"/"Infinity"/"-Infinity"', value)

    return convert


def _numeric(type_name: str) -> ParamConverter:
    def convert(value: object) -> object:
        kind = type(value)
        if value is None or kind is str or kind is int or kind is float:
            return value
        raise _mismatch(type_name, "a decimal string or a number", value)

    return convert


def _bytea(type_name: str) -> ParamConverter:
    def convert(value: object) -> object:
        if value is None:
            return None
        if type(value) is str:
            try:
                return binascii.a2b_base64(value, strict_mode=True)
            except ValueError:  # binascii.Error, or a non-ASCII character
                pass
        raise _mismatch(type_name, "base64 text", value)

    return convert


def _text(type_name: str) -> ParamConverter:
    def convert(value: object) -> object:
        if value is None or type(value) is str:
            return value
        raise _mismatch(type_name, "a string", value)

    return convert


_PARAM_CONVERTERS: Final[Mapping[str, Callable[[str], ParamConverter]]] = MappingProxyType(
    {
        "boolean": _boolean,
        "smallint": lambda name: _integer(name, -(1 << 15), (1 << 15) - 1),
        "integer": lambda name: _integer(name, -(1 << 31), (1 << 31) - 1),
        "bigint": lambda name: _integer(name, -(1 << 63), (1 << 63) - 1),
        "oid": lambda name: _integer(name, 0, (1 << 32) - 1),
        "real": _floating,
        "double precision": _floating,
        "numeric": _numeric,
        "bytea": _bytea,
    }
)

# format_type() writes modifiers into the name: numeric(12,4), timestamp(3) with time zone.
_MODIFIER = re.compile(r"\(\d+(?:,\d+)?\)")


def param_converter(type_name: str) -> ParamConverter:
    """The function from a CDC JSON value to a query parameter for a column of ``type_name``
    (the sink's own ``format_type()`` spelling), used as ``CAST(%s AS <type_name>)``.

    It checks the JSON type (raising ``SchemaMismatch``) and converts only base64 to bytes for
    bytea; strings pass through for PostgreSQL's cast to parse, so a string of the right JSON
    type but bad text ('abc' for a uuid) fails in the database instead. ``None`` passes for
    every type. json/jsonb take the JSON text as a string, as the CDC side writes it.
    """
    base = _MODIFIER.sub("", type_name)
    if base.endswith("[]"):  # arrays travel as PostgreSQL's array text
        return _text(type_name)
    make = _PARAM_CONVERTERS.get(base)
    return make(type_name) if make is not None else _text(type_name)
