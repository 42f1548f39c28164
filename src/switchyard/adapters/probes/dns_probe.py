"""The DNS probe: ask the authoritative server directly what the GSLB record answers.

Asking the authoritative server (not a resolver) sees a change the moment it is made, with no
cache in between; that is what verifying a DNS step of a failover needs.
"""

from __future__ import annotations

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from switchyard.adapters.probes.outcome import Verdict, measured, one_line
from switchyard.domain.probe import ProbeCode, ProbeKind, ProbeResult


class DnsProbe:
    """Query ``name`` (type ``rdtype``, A by default) over UDP at ``server:port``.

    ok when the server answers NOERROR with at least one record of that type and, when
    ``expected`` is given, one of them is ``expected``. A different answer, or none, while
    ``expected`` is given is ``wrong_answer``; an error rcode, no record without an
    expectation, or a malformed reply is ``dns_error``. The reason lists the answer.
    """

    __slots__ = ("_action", "_rdtype", "expected", "kind", "name", "port", "server", "target")

    def __init__(
        self,
        target: str,
        server: str,
        port: int,
        name: str,
        expected: str | None = None,
        *,
        rdtype: str = "A",
    ) -> None:
        self.target = target
        self.kind = ProbeKind.DNS
        self.server = server
        self.port = port
        self.name = name if name.endswith(".") else name + "."
        self.expected = expected
        self._rdtype = dns.rdatatype.from_text(rdtype)
        self._action = f"DNS {self.name} {rdtype} at {server}:{port}"

    async def probe(self, timeout_seconds: float) -> ProbeResult:
        return await measured(self.target, self.kind, timeout_seconds, self._check(), self._action)

    async def _check(self) -> Verdict:
        query = dns.message.make_query(self.name, self._rdtype)
        try:
            # No timeout of dnspython's own: the probe's deadline cancels the query.
            response = await dns.asyncquery.udp(query, self.server, port=self.port)
        except dns.exception.DNSException as exc:
            return Verdict(ProbeCode.DNS_ERROR, f"{self._action}: {one_line(str(exc))}")
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            return Verdict(
                ProbeCode.DNS_ERROR, f"{self._action} answered {dns.rcode.to_text(rcode)}"
            )
        answers = sorted(
            rdata.to_text()
            for rrset in response.answer
            if rrset.rdtype == self._rdtype
            for rdata in rrset
        )
        listed = ", ".join(answers) if answers else "no record"
        if self.expected is not None and self.expected not in answers:
            return Verdict(
                ProbeCode.WRONG_ANSWER,
                f"{self._action} answered {listed}, expected {self.expected}",
            )
        if not answers:
            return Verdict(ProbeCode.DNS_ERROR, f"{self._action} answered no record")
        return Verdict(ProbeCode.OK, f"{self._action} answered {listed}")
