"""HTTP probes over the shared aiohttp session: a plain status check and the readiness check.

Response bodies are parsed here, where they enter, into frozen values; nothing untyped
travels further than this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from yarl import URL

from switchyard.adapters.probes.clients import ProbeClients
from switchyard.adapters.probes.outcome import Verdict, measured, one_line
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult

MAX_BODY_IN_REASON = 80


class BodyError(ValueError):
    """A response body that is not what the endpoint promises; the message names the field."""


def shown(url: str | URL) -> str:
    """``url`` as reasons show it: without user, password, query or fragment."""
    u = URL(url) if isinstance(url, str) else url
    return str(u.with_user(None).with_query(None).with_fragment(None))


def endpoint(base_url: str, path: str) -> str:
    """``path`` under ``base_url``, keeping any path prefix the base has."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


class HttpProbe:
    """GET ``url``; ok when the status is ``expect_status`` and the body holds ``body_contains``.

    Redirects are not followed: a health endpoint that redirects is misconfigured.
    """

    __slots__ = (
        "_action",
        "_clients",
        "_url",
        "body_contains",
        "expect_status",
        "kind",
        "target",
        "url",
    )

    def __init__(
        self,
        target: str,
        url: str,
        *,
        clients: ProbeClients,
        expect_status: int = 200,
        body_contains: str | None = None,
    ) -> None:
        self.target = target
        self.kind = ProbeKind.HTTP
        self.url = url
        self._url = URL(url)  # parsed once, not on every request
        self.expect_status = expect_status
        self.body_contains = body_contains
        self._clients = clients
        self._action = f"GET {shown(url)}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(self.target, self.kind, timeout_seconds, self._check(), self._action)

    async def _check(self) -> Verdict:
        async with self._clients.http().get(self._url, allow_redirects=False) as response:
            body = await response.read()
            status = response.status
        if status != self.expect_status:
            return Verdict(
                ProbeCode.HTTP_STATUS,
                f"{self._action} answered {status}, expected {self.expect_status}",
            )
        if self.body_contains is not None and self.body_contains.encode() not in body:
            excerpt = one_line(body[:MAX_BODY_IN_REASON].decode(errors="replace"))
            return Verdict(
                ProbeCode.BODY_MISMATCH,
                f"{self._action} answered {status} without {self.body_contains!r}"
                f" in the body (starts {excerpt!r})",
            )
        return Verdict(ProbeCode.OK, f"{self._action} answered {status}")


@dataclass(frozen=True, slots=True)
class Readiness:
    """A runtime's ``/readyz`` body. ``checks`` maps a check name to its state ("ok" passes)."""

    ready: bool
    role: str | None
    epoch: int | None
    checks: Mapping[str, str]

    @classmethod
    def parse(cls, body: bytes) -> Readiness:
        """Raise :class:`BodyError` naming the field when ``body`` is not a readiness body."""
        raw = json_object(body)
        ready = raw.get("ready")
        if not isinstance(ready, bool):
            raise BodyError("field 'ready' is not a boolean")
        checks = raw.get("checks", {})
        if not isinstance(checks, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in checks.items()
        ):
            raise BodyError("field 'checks' is not a mapping of text to text")
        return cls(
            ready,
            optional_str(raw, "role"),
            optional_int(raw, "epoch"),
            MappingProxyType(dict(checks)),
        )

    def failing(self) -> str:
        """The checks that did not pass, as ``name=state`` pairs, sorted."""
        bad = sorted(f"{k}={v}" for k, v in self.checks.items() if v != "ok")
        return ", ".join(bad) or "none listed"


class ReadinessProbe:
    """GET ``<runtime_url>/readyz``; ok when it answers 200 with ``ready: true``.

    The role and epoch the runtime reports are carried in the result, ready or not.
    """

    __slots__ = ("_action", "_clients", "_url", "kind", "target", "url")

    def __init__(self, target: str, runtime_url: str, *, clients: ProbeClients) -> None:
        self.target = target
        self.kind = ProbeKind.HTTP
        self.url = endpoint(runtime_url, "readyz")
        self._url = URL(self.url)
        self._clients = clients
        self._action = f"GET {shown(self.url)}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(self.target, self.kind, timeout_seconds, self._check(), self._action)

    async def _check(self) -> Verdict:
        async with self._clients.http().get(self._url, allow_redirects=False) as response:
            body = await response.read()
            status = response.status
        if status not in (200, 503):
            return Verdict(ProbeCode.HTTP_STATUS, f"{self._action} answered {status}")
        try:
            readiness = Readiness.parse(body)
        except BodyError as exc:
            return Verdict(ProbeCode.BODY_MISMATCH, f"{self._action} answered {status}: {exc}")
        role, epoch = readiness.role, readiness.epoch
        if status == 200 and readiness.ready:
            return Verdict(
                ProbeCode.OK, f"{self._action}: ready as {role} at epoch {epoch}", role, epoch
            )
        return Verdict(
            ProbeCode.NOT_READY,
            f"{self._action} answered {status}: not ready, failing checks {readiness.failing()}",
            role,
            epoch,
        )


def json_object(body: bytes) -> dict[str, object]:
    """``body`` as a JSON object; BodyError when it is not one."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise BodyError("body is not JSON") from None
    if not isinstance(raw, dict):
        raise BodyError("body is not a JSON object")
    return raw


def optional_str(raw: Mapping[str, object], field: str) -> str | None:
    """``raw[field]`` when it is text, None when absent or null; BodyError otherwise."""
    value = raw.get(field)
    if value is None or isinstance(value, str):
        return value
    raise BodyError(f"field {field!r} is not text")


def optional_int(raw: Mapping[str, object], field: str) -> int | None:
    """``raw[field]`` when it is an integer, None when absent or null; BodyError otherwise."""
    value = raw.get(field)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise BodyError(f"field {field!r} is not an integer")
