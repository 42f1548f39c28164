"""Contact with the control plane: controllers' probes carry their vantage point, and a runtime
counts them (and nothing else) as contact; without contact for too long, renewal is withheld."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from switchyard.adapters.probes import ProbeClients
from switchyard.dialog.contact import ContactMiddleware, ControlPlaneContact
from switchyard.domain.probe import VANTAGE_HEADER


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_contact_counts_from_the_start_and_lapses_after_the_timeout() -> None:
    clock = Clock()
    contact = ControlPlaneContact(600, monotonic=clock)
    clock.now = 600.0
    assert contact.withheld() is None
    clock.now = 601.0
    reason = contact.withheld()
    assert reason is not None
    assert "601 s" in reason
    contact.seen()
    assert contact.withheld() is None


def test_only_requests_with_the_vantage_header_are_contact() -> None:
    clock = Clock()
    contact = ControlPlaneContact(10, monotonic=clock)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(ContactMiddleware, contact=contact)
    client = TestClient(app)
    clock.now = 100.0
    assert client.get("/healthz").status_code == 200  # a load balancer, a person: not contact
    assert contact.withheld() is not None
    assert client.get("/healthz", headers={VANTAGE_HEADER: "witness"}).status_code == 200
    assert contact.withheld() is None


def test_a_controllers_probes_carry_its_vantage_point() -> None:
    async def headers(clients: ProbeClients) -> dict[str, str]:
        async with clients:
            return dict(clients.http().headers)

    assert asyncio.run(headers(ProbeClients(vantage="witness")))[VANTAGE_HEADER] == "witness"
    assert VANTAGE_HEADER not in asyncio.run(headers(ProbeClients()))
