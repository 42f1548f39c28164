"""What one probe of one region observed: a value, never an exception.

Invariants:

- ``ok`` is true exactly when ``code`` is ``"ok"``: a result cannot claim success with a
  failure code, or fail with the success code.
- ``latency_ms`` is never negative; it is the time the probe took to reach its result,
  including a timeout (a timed-out probe reports roughly its deadline).
- ``code`` is one of :class:`ProbeCode` (stable: metrics labels and tests use it);
  ``reason`` is one sentence for people and never holds a secret (adapters build it from
  the driver's message and the target's address, never from a DSN or a password).
- ``role`` and ``epoch`` are what the target itself reported (its ``region_state`` row, its
  readiness or canary body), None when the probe does not read them or could not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The header every controller's probe carries (its vantage point): a runtime counts such
# requests as contact with the control plane, and stops renewing its database login when none
# has arrived for a while (``switchyard.dialog.contact``).
VANTAGE_HEADER = "X-Switchyard-Vantage"


class ProbeKind(StrEnum):
    """Which protocol a probe speaks; the values label metrics."""

    HTTP = "http"
    TCP = "tcp"
    POSTGRES = "postgres"
    DNS = "dns"
    CANARY = "canary"


class ProbeCode(StrEnum):
    """The stable outcome codes; ``ProbeResult.code`` holds one of these values."""

    OK = "ok"
    TIMEOUT = "timeout"
    CONNECT_REFUSED = "connect_refused"
    HTTP_STATUS = "http_status"
    NOT_READY = "not_ready"
    BODY_MISMATCH = "body_mismatch"
    WRONG_ANSWER = "wrong_answer"
    NOT_CITED = "not_cited"
    DB_ERROR = "db_error"
    DNS_ERROR = "dns_error"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's observation of ``target`` (a region name); see the module invariants."""

    target: str
    kind: ProbeKind
    ok: bool
    latency_ms: float
    code: str
    reason: str
    role: str | None = None
    epoch: int | None = None

    def __post_init__(self) -> None:
        if self.ok != (self.code == ProbeCode.OK):
            raise ValueError(f"probe result ok={self.ok} contradicts code {self.code!r}")
        if self.latency_ms < 0:
            raise ValueError(f"probe latency must be >= 0 ms, got {self.latency_ms}")
