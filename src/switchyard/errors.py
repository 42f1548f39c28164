"""One error hierarchy, split by what the caller should do about it.

The controller loop chooses its response by category, never by message:

- ``TransientError``: retry later (a server did not answer, a timeout).
- ``FatalError``: stop this operation; retrying will not help.
- ``FencingError``: refuse; a newer epoch or lease holder exists.
- ``ConfigError``: fail at start-up, naming the file and the field.

Messages never contain secret values.
"""

from __future__ import annotations


class SwitchyardError(Exception):
    """Base of every error Switchyard raises on purpose."""

    code: str = "error"


class TransientError(SwitchyardError):
    """The operation may succeed if tried again later, after ``retry_after_seconds``.

    Subclasses name their own ``code`` (``region_standby``, ``llm_busy``); the API answers
    every one with 503, that code and a ``Retry-After`` header.
    """

    code = "unavailable"
    retry_after_seconds: int = 5


class FatalError(SwitchyardError):
    """The operation cannot succeed as asked; do not retry."""

    code = "fatal"


class FencingError(SwitchyardError):
    """The caller's lease or epoch is no longer current; it must not act."""

    code = "fenced"


class NotFoundError(FatalError):
    """A named thing (region, secret path, event) does not exist."""

    code = "not_found"


class ConflictError(FatalError):
    """A compare-and-set or uniqueness check failed; ``code`` says which (default "conflict")."""

    code = "conflict"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(SwitchyardError):
    """Configuration is invalid; start-up stops with file and field named.

    ``problems`` lists every ``(field, problem)`` found, the first being the one named in the
    message; the problems say what is wrong, never what the input was (it may be a secret).
    """

    code = "config_invalid"

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.problems: list[tuple[str, str]] = [(field, problem)]
        super().__init__(f"{source}: {field}: {problem}")
