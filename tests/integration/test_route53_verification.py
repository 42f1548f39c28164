"""Route 53 is verified by what its name servers answer, after its change is INSYNC.

Route 53 here is moto's API behind ``support.route53.Route53Edge``: a real HTTP server that
serves each accepted change from the harness's Knot and answers GetChange PENDING until it
has (moto alone serves no DNS and always says INSYNC). ``edge.held()`` is the propagation
delay: changes are stored by the API at once but served, and INSYNC, only on release.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import boto3
import pytest

from support.route53 import Route53Edge, mirror, moto_route53_zone, route53_edge_on
from switchyard.adapters.clock import FakeClock
from switchyard.adapters.dns_rfc2136 import Rfc2136DnsProvider, TsigKey
from switchyard.adapters.dns_route53 import AwsCredentials, Route53DnsProvider
from switchyard.controller.gslb import route_to, verify_answers
from switchyard.devenv.dns import TSIG_KEY_NAME, ZONE
from switchyard.devenv.harness import Harness
from switchyard.domain.dns import plan, single
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, TransientError

OLD, NEW = "127.0.1.1", "127.0.2.1"
TTL = 30
AWS = AwsCredentials(Secret("contract"), Secret("contract"))


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, str]]:
    with moto_route53_zone(ZONE) as found:
        yield found


@pytest.fixture(scope="module")
def knot(harness: Harness) -> Rfc2136DnsProvider:
    """The harness's Knot, written over RFC 2136: Route 53's name servers in these tests."""
    key = TsigKey(TSIG_KEY_NAME, "hmac-sha256", Secret(harness.creds.tsig_secret))
    return Rfc2136DnsProvider(ZONE, "127.0.0.1", port=harness.knot.port, tsig=key)


@pytest.fixture(scope="module")
def edge(moto: tuple[str, str], knot: Rfc2136DnsProvider) -> Iterator[Route53Edge]:
    url, zone_id = moto
    api = Route53DnsProvider(ZONE, zone_id, credentials=AWS, endpoint_url=url)
    with route53_edge_on(url, mirror(api, knot)) as started:
        yield started


@pytest.fixture
def server(harness: Harness) -> str:
    return f"127.0.0.1:{harness.knot.port}"


@pytest.fixture
def owner(edge: Route53Edge, moto: tuple[str, str], knot: Rfc2136DnsProvider) -> Iterator[str]:
    """A name of this test's own; afterwards deleted from the API and from Knot."""
    name = f"verify-{uuid4().hex[:12]}.{ZONE}"
    yield name
    edge.release()
    api = Route53DnsProvider(ZONE, moto[1], credentials=AWS, endpoint_url=edge.url)
    api.apply(plan(api.records(name), []))
    knot.apply(plan(knot.records(name), []))


def route53(
    edge: Route53Edge,
    moto: tuple[str, str],
    harness: Harness,
    clock: FakeClock,
    *,
    change_wait_seconds: float = 3.0,
) -> Route53DnsProvider:
    """The adapter against the edge, asking Knot as its one name server, on a fake clock."""
    return Route53DnsProvider(
        ZONE,
        moto[1],
        credentials=AWS,
        endpoint_url=edge.url,
        name_servers=[("127.0.0.1", harness.knot.port)],
        clock=clock,
        change_wait_seconds=change_wait_seconds,
        poll_seconds=1.0,
    )


class ReleasingClock(FakeClock):
    """A fake clock on which Route 53 finishes propagating during the ``after``-th sleep."""

    def __init__(self, edge: Route53Edge, after: int) -> None:
        super().__init__()
        self.edge = edge
        self.after = after
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.sleeps += 1
        if self.sleeps == self.after:
            self.edge.release()


def test_stored_by_the_api_but_not_served_is_not_verified(
    edge: Route53Edge, moto: tuple[str, str], harness: Harness, owner: str, server: str
) -> None:
    provider = route53(edge, moto, harness, FakeClock())
    route_to([provider], owner, single(owner, TTL, OLD))

    with edge.held():
        route_to([provider], owner, single(owner, TTL, NEW))

        assert provider.records(owner) == (single(owner, TTL, NEW),)  # the API has it
        stale = verify_answers([provider], owner, NEW)
        assert not stale.ok
        assert f"{server} answers {OLD}" in stale.reason
        change = provider.answer(owner).change
        assert change is not None
        assert stale.detail["route53"] == {
            "asked": [server],
            "answers": {server: [OLD]},
            "change": "PENDING",
            "change_id": change.id,
        }

    served = verify_answers([provider], owner, NEW)
    assert served.ok, served.reason
    assert served.detail["route53"] == {
        "asked": [server],
        "answers": {server: [NEW]},
        "change": "INSYNC",
        "change_id": change.id,
    }


def test_a_name_the_servers_do_not_answer_yet_is_not_verified(
    edge: Route53Edge, moto: tuple[str, str], harness: Harness, owner: str, server: str
) -> None:
    provider = route53(edge, moto, harness, FakeClock())

    with edge.held():
        route_to([provider], owner, single(owner, TTL, NEW))
        assert provider.records(owner) == (single(owner, TTL, NEW),)

        check = verify_answers([provider], owner, NEW)
        assert not check.ok
        assert f"{server} answers nothing" in check.reason

    assert verify_answers([provider], owner, NEW).ok


def test_apply_waits_while_the_change_is_pending(
    edge: Route53Edge, moto: tuple[str, str], harness: Harness, owner: str, knot: Rfc2136DnsProvider
) -> None:
    clock = ReleasingClock(edge, after=3)
    provider = route53(edge, moto, harness, clock, change_wait_seconds=30.0)
    started, polls = clock.now(), edge.get_change_calls
    edge.hold()

    route_to([provider], owner, single(owner, TTL, NEW))

    # Returned only once GetChange said INSYNC: three polls, one second apart, on the clock.
    assert clock.sleeps == 3
    assert (clock.now() - started).total_seconds() == 3.0
    assert edge.get_change_calls - polls == 3
    assert knot.answer(owner).addresses == (NEW,)  # served the moment apply returned
    answer = provider.answer(owner)
    assert answer.change is not None
    assert (answer.change.status, answer.change.settled) == ("INSYNC", True)


def test_a_change_pending_past_the_wait_is_reported_and_never_verified(
    edge: Route53Edge, moto: tuple[str, str], harness: Harness, owner: str, knot: Rfc2136DnsProvider
) -> None:
    clock = FakeClock()
    provider = route53(edge, moto, harness, clock, change_wait_seconds=3.0)
    started = clock.now()

    with edge.held():
        route_to([provider], owner, single(owner, TTL, NEW))

        # The wait is bounded: apply returns after change_wait_seconds, still PENDING.
        assert (clock.now() - started).total_seconds() == 3.0
        answer = provider.answer(owner)
        assert answer.change is not None
        assert answer.change.status == "PENDING"
        # Even a server that already answers the new address does not verify a change that
        # Route 53 still reports as propagating.
        knot.apply(plan(knot.records(owner), [single(owner, TTL, NEW)]))
        check = verify_answers([provider], owner, NEW)
        assert not check.ok
        assert f"change {answer.change.id} PENDING" in check.reason

    assert verify_answers([provider], owner, NEW).ok


def test_without_name_servers_it_asks_the_hosted_zones_delegation_set(
    edge: Route53Edge, moto: tuple[str, str], owner: str
) -> None:
    url, zone_id = moto
    client = boto3.client(
        "route53",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="contract",
        aws_secret_access_key="contract",
    )
    delegated = client.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    provider = Route53DnsProvider(
        ZONE, zone_id, credentials=AWS, endpoint_url=edge.url, timeout=0.3
    )
    provider.apply(plan([], [single(owner, TTL, NEW)]))

    # moto's delegation set names servers that serve nothing here (they do not even resolve
    # offline): asking them fails, naming the first, instead of reading the stored record.
    with pytest.raises((TransientError, FatalError), match=delegated[0].rstrip(".")):
        provider.answer(owner)


class OutageClock(FakeClock):
    """A fake clock during whose first sleep the Route 53 API starts answering 503."""

    def __init__(self, edge: Route53Edge) -> None:
        super().__init__()
        self.edge = edge

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.edge.unavailable = True


def test_a_stored_change_is_not_reported_failed_when_polling_it_fails(
    moto: tuple[str, str], harness: Harness, owner: str
) -> None:
    url, zone_id = moto
    api = Route53DnsProvider(ZONE, zone_id, credentials=AWS, endpoint_url=url)
    with route53_edge_on(url, lambda names: None) as private:
        private.hold()
        provider = Route53DnsProvider(
            ZONE,
            zone_id,
            credentials=AWS,
            endpoint_url=private.url,
            max_attempts=1,
            name_servers=[("127.0.0.1", harness.knot.port)],
            clock=OutageClock(private),
        )

        provider.apply(plan([], [single(owner, TTL, NEW)]))  # the poll fails: no error here

        assert api.records(owner) == (single(owner, TTL, NEW),)
        with pytest.raises(TransientError, match="reading change"):
            provider.answer(owner)  # the status is asked again: not verified while unknown
