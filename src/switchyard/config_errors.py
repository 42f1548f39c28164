"""Turn pydantic validation errors into one ConfigError that names the file and field."""

from __future__ import annotations

from pydantic import ValidationError

from switchyard.errors import ConfigError


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("regions", 1, "runtime_url")`` -> ``regions[1].runtime_url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def config_error(source: str, exc: ValidationError, env_prefix: str = "") -> ConfigError:
    """The first problem, named precisely; the rest summarised (all are in ``problems``)."""
    problems = []
    for err in exc.errors():
        name = field_path(tuple(err["loc"]))
        if env_prefix:
            name = env_prefix + name.split(".")[0].split("[")[0].upper()
        # Never echo the input: it may be a secret.
        problems.append((name, err["msg"].removeprefix("Value error, ")))
    first_field, first_msg = problems[0]
    extra = f" (and {len(problems) - 1} more: " + ", ".join(p[0] for p in problems[1:]) + ")"
    error = ConfigError(source, first_field, first_msg + (extra if len(problems) > 1 else ""))
    error.problems = problems
    return error
