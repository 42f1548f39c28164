"""Structured logs: one JSON object per line, with secrets masked.

API (typed, two entry points):

- ``configure_logging(level, region, stream=None, *, redactor=None, trace_id=None) -> Redactor``
  installs the JSON handler on the root logger (the CLI calls it; nothing happens at import).
  It returns the :class:`Redactor` it uses, which ``bootstrap`` hands to the secret stores.
- ``log_event(logger, event, level=..., trace_id=None, **fields)`` logs an event with fields.
  Any logger call works too: ``logger.warning("dns.update_failed", extra={"fields": {...}})``.

Every line has ``ts`` (RFC 3339, UTC, ms), ``level``, ``event`` (the message), ``region``,
``trace_id`` (``null`` when unknown) and ``logger``, then the event's fields, then ``exc`` with
the traceback when there is one. A field named like one of those keys is written as
``field_<name>`` so it cannot overwrite them.

Redaction works in two layers, both applied to every string before JSON encoding (so escaping
cannot hide a match):

1. By type: a :class:`~switchyard.domain.secrets.Secret` anywhere in the fields renders as the
   mask (``str``/``format`` of a Secret already give the mask, so messages built with ``%s`` or
   f-strings are safe too).
2. By value: the :class:`Redactor` knows the plaintext of every secret the stores handed out or
   accepted, and the tokens the Vault adapter obtained, and masks them wherever they appear:
   message, field keys and values, exception messages and tracebacks.

Trade-offs, chosen for simplicity:

- The Redactor is injected, not global: stores get it as a constructor argument (through the
  narrow ``SecretRegistry`` port) and never import logging. A secret that reaches the process
  another way is masked by value only if someone registers it.
- Values shorter than ``min_length`` (4) are not masked by value: masking "on" or "1" would shred
  every line. They are still masked when logged as a ``Secret``.
- Only exact occurrences are caught, not encodings (base64, URL quoting) or fragments.
- Registered values stay for the life of the process (rotations add one entry each); matching
  is one precompiled regex per string, rebuilt only when a new value is registered.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

from switchyard.domain.secrets import MASK, Secret

TraceIdSource = Callable[[], str | None]
"""Returns the current trace id (for example from a request context), or None."""

_RESERVED = frozenset({"ts", "level", "event", "region", "trace_id", "logger", "exc", "stack"})


class Redactor:
    """Masks the plaintext of registered secrets in any text. Thread-safe.

    Invariant: after ``register(s)`` returns, ``redact(text)`` contains no occurrence of
    ``s.reveal()`` (when it is at least ``min_length`` characters long).
    """

    def __init__(self, *, min_length: int = 4) -> None:
        self._min_length = min_length
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, secret: Secret) -> None:
        value = secret.reveal()
        if len(value) < self._min_length:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern  # one read: a concurrent register swaps in a complete pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def __repr__(self) -> str:
        return f"Redactor(values={len(self._values)})"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; see the module docstring for the keys."""

    def __init__(
        self, *, region: str, redactor: Redactor, trace_id: TraceIdSource | None = None
    ) -> None:
        super().__init__()
        self._region = region
        self._redactor = redactor
        self._trace_id = trace_id

    def format(self, record: logging.LogRecord) -> str:
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None and self._trace_id is not None:
            trace_id = self._trace_id()
        payload: dict[str, object] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "region": self._region,
            "trace_id": trace_id,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                name = str(key)
                payload[f"field_{name}" if name in _RESERVED else name] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(self._scrub(payload), ensure_ascii=False)

    def _scrub(self, value: object) -> object:
        """A JSON-ready copy of ``value`` with every secret masked."""
        if isinstance(value, Secret):
            return MASK
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            return self._redactor.redact(value)
        if isinstance(value, Mapping):
            return {self._redactor.redact(str(k)): self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(item) for item in value]
        return self._redactor.redact(str(value))


def configure_logging(
    level: int | str,
    region: str,
    stream: TextIO | None = None,
    *,
    redactor: Redactor | None = None,
    trace_id: TraceIdSource | None = None,
) -> Redactor:
    """Send every log record to ``stream`` (stderr by default) as JSON lines.

    Idempotent: a second call replaces the handler installed by the first; handlers installed
    by others (pytest's capture, for one) are left alone. Returns the redactor in use.
    """
    redactor = redactor if redactor is not None else Redactor()
    handler = _JsonHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(region=region, redactor=redactor, trace_id=trace_id))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return redactor


def log_event(
    logger: logging.Logger,
    event: str,
    /,
    *,
    level: int = logging.INFO,
    trace_id: str | None = None,
    **fields: object,
) -> None:
    """Log ``event`` (a stable dotted name such as ``"secret.read"``) with ``fields``."""
    extra: dict[str, object] = {"fields": fields}
    if trace_id is not None:
        extra["trace_id"] = trace_id
    # stacklevel=2: the record names the caller, not this helper.
    logger.log(level, event, extra=extra, stacklevel=2)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so reconfiguring replaces only it."""


def _rfc3339(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
