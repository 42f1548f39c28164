"""A Route 53 stand-in made of real servers, for tests of what Switchyard verifies on it.

moto implements Route 53's API but serves no DNS, and its GetChange always says INSYNC (one
fixed change id for every batch). Route 53 itself stores a change batch at once and serves
it from its name servers a little later; GetChange says PENDING until then. ``Route53Edge``
is a real HTTP server in front of moto that adds exactly that: it forwards every request
to moto, gives each accepted change batch an id of its own, copies the changed names from
moto to a real DNS server (the harness's Knot, over RFC 2136) and answers GetChange PENDING
until it has. ``hold()`` makes it keep new changes PENDING and unserved until ``release()``:
the propagation delay, under the test's control. Adapters talk to it with boto3 and to the
DNS server with dnspython, exactly as they would to Route 53 and its name servers.
"""

from __future__ import annotations

import http.client
import itertools
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from uuid import uuid4

from support.ports import closed_port
from switchyard.adapters.dns_rfc2136 import Rfc2136DnsProvider
from switchyard.adapters.dns_route53 import Route53DnsProvider
from switchyard.domain.dns import RecordSet, check_name, plan

_CHANGE_BATCH = re.compile(r"/2013-04-01/hostedzone/[^/]+/rrset/?")
_GET_CHANGE = re.compile(r"/2013-04-01/change/(?P<id>[A-Za-z0-9]+)")
_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"
_HOP_BY_HOP = frozenset({"host", "content-length", "connection", "transfer-encoding"})

Propagate = Callable[[Sequence[str]], None]


@contextmanager
def moto_route53_zone(zone: str) -> Iterator[tuple[str, str]]:
    """A moto server in this process holding hosted zone ``zone``: (URL, hosted zone id)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = closed_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "route53",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="contract",
            aws_secret_access_key="contract",
        )
        created = client.create_hosted_zone(Name=zone, CallerReference=uuid4().hex)
        yield url, str(created["HostedZone"]["Id"])
    finally:
        server.stop()


@contextmanager
def route53_edge_on(moto_url: str, propagate: Propagate) -> Iterator[Route53Edge]:
    """A started ``Route53Edge`` in front of ``moto_url``, stopped afterwards."""
    edge = Route53Edge(moto_url, propagate)
    edge.start()
    try:
        yield edge
    finally:
        edge.stop()


def mirror(api: Route53DnsProvider, served_by: Rfc2136DnsProvider) -> Propagate:
    """Copy what moto stores at each name to the DNS server, as Route 53's name servers
    serve it (a weighted set as its positively weighted addresses: Knot has no weights)."""

    def propagate(names: Sequence[str]) -> None:
        for name in names:
            stored = api.records(name)
            served = [RecordSet(r.name, "A", r.ttl, r.answered) for r in stored]
            served_by.apply(plan(served_by.records(name), served))

    return propagate


class Route53Edge:
    """moto's Route 53 API plus change ids, GetChange and propagation; see the module doc."""

    def __init__(self, moto_url: str, propagate: Propagate) -> None:
        moto = urlsplit(moto_url)
        self._moto = (moto.hostname or "127.0.0.1", moto.port or 80)
        self._propagate = propagate
        self._ids = (f"C{n:012d}SY" for n in itertools.count(1))
        self._state = threading.Lock()
        self._batches = threading.Lock()  # moto's order of batches is the order served
        self._held = False
        self.unavailable = False  # True: every request answers 503 ServiceUnavailable
        self._status: dict[str, str] = {}
        self._pending: dict[str, list[str]] = {}
        self.get_change_calls = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def hold(self) -> None:
        """From now on, accepted changes stay PENDING and unserved until ``release``."""
        with self._state:
            self._held = True

    def release(self) -> None:
        """Serve every held change, in order, mark each INSYNC and stop holding."""
        with self._batches:
            with self._state:
                self._held = False
                pending, self._pending = self._pending, {}
            for change_id, names in pending.items():
                self._propagate(names)
                with self._state:
                    self._status[change_id] = "INSYNC"

    @contextmanager
    def held(self) -> Iterator[None]:
        self.hold()
        try:
            yield
        finally:
            self.release()

    # -- HTTP ------------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str, bytes]:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if self.unavailable:
            return 503, "text/xml", _error("Receiver", "ServiceUnavailable", "unavailable")
        path = request.path.split("?", 1)[0]
        asked = _GET_CHANGE.fullmatch(path)
        if request.command == "GET" and asked is not None:
            return self._get_change(asked["id"])
        if request.command == "POST" and _CHANGE_BATCH.fullmatch(path):
            with self._batches:
                status, kind, reply = self._forward(request, body)
                if status != 200:
                    return status, kind, reply
                return status, kind, self._accepted(body, reply)
        return self._forward(request, body)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str, bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self._moto, timeout=10)
        try:
            conn.request(request.command, request.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", "text/xml"), response.read()
        finally:
            conn.close()

    def _accepted(self, body: bytes, reply: bytes) -> bytes:
        """Give the batch moto accepted an id of its own; serve it now unless held."""
        names = _changed_names(body)
        with self._state:
            change_id = next(self._ids)
            held = self._held
            if held:
                self._pending[change_id] = names
            self._status[change_id] = "PENDING"
        if not held:
            self._propagate(names)
            with self._state:
                self._status[change_id] = "INSYNC"
        text = reply.decode()
        text, ids = re.subn(r"<Id>[^<]*</Id>", f"<Id>/change/{change_id}</Id>", text, count=1)
        status = "PENDING" if held else "INSYNC"
        text, statuses = re.subn(
            r"<Status>[^<]*</Status>", f"<Status>{status}</Status>", text, count=1
        )
        if (ids, statuses) != (1, 1):
            raise AssertionError(f"unexpected ChangeResourceRecordSets reply from moto: {text}")
        return text.encode()

    def _get_change(self, change_id: str) -> tuple[int, str, bytes]:
        with self._state:
            self.get_change_calls += 1
            status = self._status.get(change_id)
        if status is None:
            return 404, "text/xml", _error("Sender", "NoSuchChange", f"no change {change_id}")
        submitted = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # not asserted
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><GetChangeResponse xmlns="{_XMLNS}">'
            f"<ChangeInfo><Id>/change/{change_id}</Id><Status>{status}</Status>"
            f"<SubmittedAt>{submitted}</SubmittedAt></ChangeInfo></GetChangeResponse>"
        )
        return 200, "text/xml", xml.encode()


def _error(kind: str, code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{_XMLNS}"><Error><Type>{kind}</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
    ).encode()


def _changed_names(body: bytes) -> list[str]:
    """The owner names of a ChangeResourceRecordSets request, each once, in order."""
    names: list[str] = []
    # The body comes from boto3 in this same test process, so plain ElementTree will do.
    for element in ET.fromstring(body).iter():  # noqa: S314
        if element.tag.endswith("ResourceRecordSet"):
            for child in element:
                if child.tag.endswith("Name") and child.text:
                    name = check_name(child.text if child.text.endswith(".") else child.text + ".")
                    if name not in names:
                        names.append(name)
    return names


def _handler(edge: Route53Edge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            status, kind, reply = edge.handle(self)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows failures, not every request."""

    return Handler
