"""Secret values that cannot leak by accident.

Invariants:

- ``repr``, ``str`` and ``format`` of a :class:`Secret` are always :data:`MASK`, a fixed string, so
  neither the value nor its length reaches a log, a traceback or an error message.
- :meth:`Secret.reveal` is the only way to read the value; grep for it to audit every use.
- Two secrets compare equal in constant time (``hmac.compare_digest``); a secret never equals a
  plain ``str``, so ``secret == "hunter2"`` cannot be used to probe it.
- Pickling a secret raises ``TypeError``: a pickle would carry the plaintext to wherever it goes.
  ``copy.copy`` and ``copy.deepcopy`` return the same object (it is immutable).

Why not ``pydantic.SecretStr``: it compares with ``==`` (not constant time), pickles its plaintext,
is mutable through its private attribute, and would make the pure domain import pydantic. Instead
:class:`Secret` teaches pydantic how to validate and serialise it (``__get_pydantic_core_schema__``,
which imports pydantic only when a model uses it), so ``pydantic-settings`` can declare
``token: Secret`` and dumps of the model show the mask.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, Self

from switchyard.errors import NotFoundError

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

MASK = "**********"
"""What every rendering of a secret shows; fixed length so the value's length does not leak."""


class Secret:
    """An immutable secret string; see the module docstring for its invariants."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # The type name only: the value itself may be the secret in the wrong type.
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the plaintext. Every call site is a place where the secret leaves its wrapper."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        # The spec applies to the mask (alignment, width); it never sees the value.
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        # str hashes are keyed per process (PYTHONHASHSEED), so this reveals nothing useful.
        return hash(self._value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret cannot be pickled: the pickle would carry the plaintext")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """Accept a ``Secret`` or a ``str``; serialise (python and JSON) as the mask."""
        from pydantic_core import core_schema

        return core_schema.union_schema(
            [
                core_schema.is_instance_schema(cls),
                core_schema.no_info_after_validator_function(cls, core_schema.str_schema()),
            ],
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


def check_path(path: str) -> None:
    """Refuse paths that Vault would normalise, so both adapters address the same keys.

    Raises ``ValueError`` (a caller bug) for an empty path, a leading or trailing ``/`` or an
    empty segment.
    """
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        raise ValueError(f"invalid secret path {path!r}: want 'a/b/c' without empty segments")


def check_version(version: int | None) -> None:
    """Refuse a version below 1 (``ValueError``, a caller bug); None means "the latest"."""
    if version is not None and version < 1:
        raise ValueError(f"secret version must be >= 1, got {version}")


def as_secret(value: str | Secret) -> Secret:
    """``value`` wrapped in a :class:`Secret`, or itself when it already is one."""
    return value if isinstance(value, Secret) else Secret(value)


@dataclass(frozen=True, eq=True, repr=False)
class SecretValue:
    """One version of the secret at ``path``: a read-only mapping of key to :class:`Secret`.

    Invariants: ``version >= 1``; ``data`` cannot be changed after construction; the repr names
    the path, version and keys but never a value.
    """

    path: str
    version: int
    data: Mapping[str, Secret] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_version(self.version)
        for key, value in self.data.items():
            if not isinstance(value, Secret):
                raise TypeError(f"value of key {key!r} at {self.path!r} must be a Secret")
        # A private copy, read-only: callers cannot change a value they were handed.
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def get(self, key: str) -> Secret:
        """Return the secret under ``key``; ``NotFoundError`` names the path and key if absent."""
        try:
            return self.data[key]
        except KeyError:
            raise NotFoundError(
                f"secret {self.path!r} version {self.version} has no key {key!r}"
            ) from None

    def keys(self) -> Iterator[str]:
        """The keys, sorted, so reprs and logs are stable."""
        return iter(sorted(self.data))

    def __repr__(self) -> str:
        return f"SecretValue(path={self.path!r}, version={self.version}, keys={list(self.keys())})"

    __str__ = __repr__
