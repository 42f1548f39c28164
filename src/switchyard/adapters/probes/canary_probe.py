"""The deep probe: ask a runtime its golden question and require the expected citation.

A runtime can answer 200 on ``/healthz`` while its index is empty or stale; only an answer
that cites the expected document shows retrieval works end to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from switchyard.adapters.probes.clients import ProbeClients
from switchyard.adapters.probes.http_probe import (
    BodyError,
    endpoint,
    json_object,
    optional_int,
    optional_str,
    shown,
)
from switchyard.adapters.probes.outcome import Verdict, measured
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult

MAX_IDS_IN_REASON = 5


@dataclass(frozen=True, slots=True)
class CanaryAnswer:
    """The fields of a ``/v1/canary`` body a probe judges by."""

    cited_documents: tuple[str, ...]
    retrieved_documents: tuple[str, ...]
    answer_kind: str | None
    role: str | None
    epoch: int | None

    @classmethod
    def parse(cls, body: bytes) -> CanaryAnswer:
        """Raise :class:`BodyError` naming the field when ``body`` is not a canary answer."""
        raw = json_object(body)
        return cls(
            _ids(raw, "cited_documents", required=True),
            _ids(raw, "retrieved_documents", required=False),
            optional_str(raw, "kind"),
            optional_str(raw, "role"),
            optional_int(raw, "epoch"),
        )


class CanaryProbe:
    """GET ``<runtime_url>/v1/canary?q=<question>``; ok only when ``expected_document`` is
    among the cited documents (code ``not_cited`` otherwise). The runtime's role and epoch
    from the body are carried in the result."""

    __slots__ = (
        "_action",
        "_clients",
        "expected_document",
        "kind",
        "question",
        "target",
        "url",
    )

    def __init__(
        self,
        target: str,
        runtime_url: str,
        question: str,
        expected_document: str,
        *,
        clients: ProbeClients,
    ) -> None:
        self.target = target
        self.kind = ProbeKind.CANARY
        self.url = endpoint(runtime_url, "v1/canary")
        self.question = question
        self.expected_document = expected_document
        self._clients = clients
        self._action = f"GET {shown(self.url)}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(self.target, self.kind, timeout_seconds, self._check(), self._action)

    async def _check(self) -> Verdict:
        session = self._clients.http()
        params = {"q": self.question}
        async with session.get(self.url, params=params, allow_redirects=False) as response:
            body = await response.read()
            status = response.status
        if status != 200:
            return Verdict(ProbeCode.HTTP_STATUS, f"{self._action} answered {status}")
        try:
            answer = CanaryAnswer.parse(body)
        except BodyError as exc:
            return Verdict(ProbeCode.BODY_MISMATCH, f"{self._action} answered 200: {exc}")
        role, epoch = answer.role, answer.epoch
        if self.expected_document in answer.cited_documents:
            return Verdict(
                ProbeCode.OK,
                f"canary answer cites {self.expected_document!r} ({role} at epoch {epoch})",
                role,
                epoch,
            )
        return Verdict(
            ProbeCode.NOT_CITED,
            f"canary answer ({answer.answer_kind}) does not cite {self.expected_document!r}:"
            f" cited {_listed(answer.cited_documents)},"
            f" retrieved {_listed(answer.retrieved_documents)}",
            role,
            epoch,
        )


def _ids(raw: Mapping[str, object], field: str, *, required: bool) -> tuple[str, ...]:
    value = raw.get(field)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BodyError(f"field {field!r} is not a list of document ids")
    return tuple(value)


def _listed(ids: tuple[str, ...]) -> str:
    if not ids:
        return "none"
    more = len(ids) - MAX_IDS_IN_REASON
    head = ", ".join(ids[:MAX_IDS_IN_REASON])
    return f"[{head}{f', … {more} more' if more > 0 else ''}]"
