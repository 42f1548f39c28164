"""DnsProvider contract: the in-memory twin, Knot (RFC 2136), PowerDNS and Route 53 (moto's
API, its changes served by the harness's Knot as Route 53's name servers; see support.route53).

Every test works on an owner name of its own (``contract-<random>.gslb.switchyard.test.``)
and deletes it afterwards, so the demo's ``chat`` record is never touched.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import pytest

from support.ports import closed_port
from support.route53 import Route53Edge, mirror, moto_route53_zone, route53_edge_on
from switchyard.adapters.dns_memory import InMemoryDnsProvider
from switchyard.adapters.dns_powerdns import PowerDnsApiProvider
from switchyard.adapters.dns_registry import DnsProviderSpec, build_dns_provider
from switchyard.adapters.dns_rfc2136 import Rfc2136DnsProvider, TsigKey
from switchyard.adapters.dns_route53 import AwsCredentials, Route53DnsProvider
from switchyard.adapters.secrets_memory import InMemorySecretStore
from switchyard.controller.gslb import answers, route_to, verify_answers
from switchyard.devenv.dns import TSIG_KEY_NAME, ZONE
from switchyard.devenv.harness import Harness
from switchyard.domain.dns import Answer, Change, RecordSet, ServerAnswer, plan, single, weighted
from switchyard.domain.secrets import Secret
from switchyard.errors import ConfigError, ConflictError, FatalError, TransientError
from switchyard.ports.dns import DnsProvider
from switchyard.topology import PowerDnsProvider, Rfc2136Provider, Route53Provider

A, B, C = "127.0.1.1", "127.0.2.1", "127.0.3.1"
AWS = AwsCredentials(Secret("contract"), Secret("contract"))
TTL = 30
QUICK = 0.3  # seconds: how long a test waits on a server that is not there


@dataclass(frozen=True)
class Backend:
    """How to reach one provider: fresh adapters on the same zone, and broken ones."""

    kind: str
    build: Callable[[], DnsProvider]
    unreachable: Callable[[], DnsProvider]
    # An adapter with the wrong key, and that key (which no error may show).
    bad_credentials: Callable[[], tuple[DnsProvider, str]] | None = None
    # Why separate adapters (as separate processes would) can both pass the compare; None
    # when the server itself checks, so exactly one of them wins.
    race: str | None = None


@pytest.fixture(scope="module")
def moto_route53() -> Iterator[tuple[str, str]]:
    """A moto server in this process with the GSLB zone: (endpoint URL, hosted zone id)."""
    with moto_route53_zone(ZONE) as found:
        yield found


@pytest.fixture(scope="module")
def route53_edge(moto_route53: tuple[str, str], harness: Harness) -> Iterator[Route53Edge]:
    """Route 53 as the adapter meets it: moto's API, its changes served by the harness's Knot
    (see ``support.route53``). Answers are asked of Knot, never read from the API."""
    url, zone_id = moto_route53
    api = Route53DnsProvider(ZONE, zone_id, credentials=AWS, endpoint_url=url)
    with route53_edge_on(url, mirror(api, _knot_admin(harness))) as edge:
        yield edge


def _knot_admin(h: Harness) -> Rfc2136DnsProvider:
    key = TsigKey(TSIG_KEY_NAME, "hmac-sha256", Secret(h.creds.tsig_secret))
    return Rfc2136DnsProvider(ZONE, "127.0.0.1", port=h.knot.port, tsig=key)


def _memory() -> Backend:
    shared = InMemoryDnsProvider(ZONE)

    def unreachable() -> DnsProvider:
        down = InMemoryDnsProvider(ZONE)
        down.set_reachable(False)
        return down

    return Backend("memory", lambda: shared, unreachable)


def _knot(h: Harness) -> Backend:
    key = TsigKey(TSIG_KEY_NAME, "hmac-sha256", Secret(h.creds.tsig_secret))

    def impostor() -> tuple[DnsProvider, str]:
        wrong = base64.b64encode(os.urandom(32)).decode()
        bad = TsigKey(TSIG_KEY_NAME, "hmac-sha256", Secret(wrong))
        return Rfc2136DnsProvider(ZONE, "127.0.0.1", port=h.knot.port, tsig=bad), wrong

    return Backend(
        "rfc2136",
        lambda: Rfc2136DnsProvider(ZONE, "127.0.0.1", port=h.knot.port, tsig=key),
        lambda: Rfc2136DnsProvider(ZONE, "127.0.0.1", port=closed_port(), tsig=key, timeout=QUICK),
        impostor,
    )


def _pdns(h: Harness) -> Backend:
    def build(api_key: str = h.creds.pdns_api_key) -> DnsProvider:
        return PowerDnsApiProvider(ZONE, h.pdns.api_url, api_key=Secret(api_key))

    def unreachable() -> DnsProvider:
        return PowerDnsApiProvider(
            ZONE,
            f"http://127.0.0.1:{closed_port()}",
            api_key=Secret(h.creds.pdns_api_key),
            dns_server=("127.0.0.1", closed_port()),
            timeout=QUICK,
        )

    return Backend(
        "powerdns",
        build,
        unreachable,
        lambda: (build("not-the-api-key"), "not-the-api-key"),
        race="the API has no conditional write (read-compare-PATCH window)",
    )


def _route53(moto: tuple[str, str], edge: Route53Edge, h: Harness) -> Backend:
    _, zone_id = moto

    def build() -> DnsProvider:
        return Route53DnsProvider(
            ZONE,
            zone_id,
            credentials=AWS,
            endpoint_url=edge.url,
            name_servers=[("127.0.0.1", h.knot.port)],
        )

    def unreachable() -> DnsProvider:
        return Route53DnsProvider(
            ZONE,
            zone_id,
            credentials=AWS,
            endpoint_url=f"http://127.0.0.1:{closed_port()}",
            timeout=QUICK,
            max_attempts=1,
            name_servers=[("127.0.0.1", closed_port())],
        )

    return Backend(
        "route53",
        build,
        unreachable,
        None,  # moto accepts any credentials
        race="moto does not compare DELETEs with what it stores (AWS does)",
    )


@pytest.fixture(params=["memory", "rfc2136", "powerdns", "route53"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return _memory()
    # Looked up lazily so the memory runs need no local servers.
    harness: Harness = request.getfixturevalue("harness")
    if request.param == "route53":
        moto, edge = (
            request.getfixturevalue("moto_route53"),
            request.getfixturevalue("route53_edge"),
        )
        return _route53(moto, edge, harness)
    return _knot(harness) if request.param == "rfc2136" else _pdns(harness)


@pytest.fixture
def provider(backend: Backend) -> DnsProvider:
    return backend.build()


@pytest.fixture
def owner(backend: Backend) -> Iterator[str]:
    """A name of this test's own, deleted afterwards whatever the test left there."""
    name = f"contract-{uuid4().hex[:12]}.{ZONE}"
    yield name
    cleaner = backend.build()
    leftover = cleaner.records(name)
    if leftover:
        cleaner.apply(plan(leftover, []))


def converge(provider: DnsProvider, desired: RecordSet) -> None:
    provider.apply(plan(provider.records(desired.name), [desired]))


# -- reading what was written ---------------------------------------------------------------


def test_a_name_never_written_has_no_records_and_no_answer(
    provider: DnsProvider, owner: str
) -> None:
    assert provider.records(owner) == ()
    assert provider.answer(owner).addresses == ()


def test_create_is_read_back_and_answered(provider: DnsProvider, owner: str) -> None:
    record = single(owner, TTL, A)

    provider.apply([Change("create", None, record)])

    assert provider.records(owner) == (record,)
    assert provider.answer(owner).addresses == (A,)


def test_update_is_answered_on_the_very_next_query(provider: DnsProvider, owner: str) -> None:
    old = single(owner, TTL, A)
    provider.apply([Change("create", None, old)])
    assert provider.answer(owner).addresses == (A,)

    new = single(owner, TTL, B)
    provider.apply([Change("update", old, new)])

    assert provider.answer(owner).addresses == (B,)
    assert provider.records(owner) == (new,)


def test_several_addresses_and_a_new_ttl_round_trip(provider: DnsProvider, owner: str) -> None:
    old = single(owner, TTL, A)
    provider.apply([Change("create", None, old)])
    new = RecordSet(owner, "A", 60, (C, A, B))

    provider.apply([Change("update", old, new)])

    assert provider.records(owner) == (new,)
    assert new.values == (A, B, C)
    assert provider.answer(owner).addresses == (A, B, C)


def test_delete_removes_record_and_answer(provider: DnsProvider, owner: str) -> None:
    record = single(owner, TTL, A)
    provider.apply([Change("create", None, record)])

    provider.apply([Change("delete", record, None)])

    assert provider.records(owner) == ()
    assert provider.answer(owner).addresses == ()


def test_empty_batch_is_a_no_op_without_io(backend: Backend, owner: str) -> None:
    provider = backend.build()
    record = single(owner, TTL, A)
    provider.apply([Change("create", None, record)])

    provider.apply([])
    backend.unreachable().apply([])  # would raise if it tried to reach the server

    assert provider.records(owner) == (record,)


def test_names_outside_the_zone_are_refused(provider: DnsProvider) -> None:
    with pytest.raises(ValueError, match="outside zone"):
        provider.records("chat.example.org.")
    with pytest.raises(ValueError, match="outside zone"):
        provider.apply([Change("create", None, single("chat.example.org.", TTL, A))])


# -- compare-and-set ------------------------------------------------------------------------


def test_stale_update_conflicts_and_leaves_the_record(backend: Backend, owner: str) -> None:
    first, second = backend.build(), backend.build()
    first.apply([Change("create", None, single(owner, TTL, A))])
    seen_by_second = second.records(owner)

    first.apply(plan(first.records(owner), [single(owner, TTL, B)]))
    with pytest.raises(ConflictError, match=owner):
        second.apply(plan(seen_by_second, [single(owner, TTL, C)]))

    assert first.records(owner) == (single(owner, TTL, B),)
    assert first.answer(owner).addresses == (B,)


def test_create_conflicts_when_someone_created_first(backend: Backend, owner: str) -> None:
    first, second = backend.build(), backend.build()
    first.apply([Change("create", None, single(owner, TTL, A))])

    with pytest.raises(ConflictError, match=owner):
        second.apply([Change("create", None, single(owner, TTL, B))])

    assert second.records(owner) == (single(owner, TTL, A),)


def test_stale_delete_conflicts_and_keeps_the_record(backend: Backend, owner: str) -> None:
    first, second = backend.build(), backend.build()
    original = single(owner, TTL, A)
    first.apply([Change("create", None, original)])
    moved = single(owner, TTL, B)
    first.apply([Change("update", original, moved)])

    with pytest.raises(ConflictError, match=owner):
        second.apply([Change("delete", original, None)])

    assert second.records(owner) == (moved,)


def test_a_batch_with_one_stale_change_applies_nothing(provider: DnsProvider, owner: str) -> None:
    other = f"other-{owner}"
    try:
        provider.apply([Change("create", None, single(owner, TTL, A))])
        stale = single(owner, TTL, C)

        with pytest.raises(ConflictError):
            provider.apply(
                [
                    Change("create", None, single(other, TTL, B)),
                    Change("update", stale, single(owner, TTL, B)),
                ]
            )

        assert provider.records(other) == ()
        assert provider.records(owner) == (single(owner, TTL, A),)
    finally:
        leftover = provider.records(other)
        if leftover:
            provider.apply(plan(leftover, []))


@pytest.mark.parametrize("sharing", ["one adapter", "one adapter each"])
def test_concurrent_writers_exactly_one_wins(backend: Backend, owner: str, sharing: str) -> None:
    if sharing == "one adapter each" and backend.race is not None:
        pytest.skip(f"{backend.kind}: {backend.race}")
    writers = 6
    shared = backend.build()
    start = backend.build()
    original = single(owner, TTL, A)
    start.apply([Change("create", None, original)])
    targets = [f"127.0.{10 + i}.1" for i in range(writers)]
    adapters = [shared if sharing == "one adapter" else backend.build() for _ in targets]
    barrier = threading.Barrier(writers)
    won: list[str] = []
    conflicts: list[str] = []
    errors: list[BaseException] = []

    def write(adapter: DnsProvider, target: str) -> None:
        try:
            barrier.wait()
            adapter.apply([Change("update", original, single(owner, TTL, target))])
            won.append(target)
        except ConflictError:
            conflicts.append(target)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=pair) for pair in zip(adapters, targets, strict=False)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(won) == 1, f"winners: {won}"
    assert len(conflicts) == writers - 1
    assert start.records(owner) == (single(owner, TTL, won[0]),)


# -- weights --------------------------------------------------------------------------------


def test_weights_round_trip_where_supported(provider: DnsProvider, owner: str) -> None:
    if not provider.supports_weights:
        pytest.skip(f"{provider.name} has no weights; see the refusal test")
    split = weighted(owner, TTL, {A: 80, B: 20})
    provider.apply([Change("create", None, split)])

    assert provider.records(owner) == (split,)
    assert set(provider.answer(owner).addresses) <= {A, B}
    assert provider.answer(owner).addresses

    drained = weighted(owner, TTL, {A: 0, B: 100})
    provider.apply([Change("update", split, drained)])
    assert provider.records(owner) == (drained,)
    for _ in range(5):  # a weight of 0 is never picked
        assert provider.answer(owner).addresses == (B,)

    plain = single(owner, TTL, C)
    provider.apply([Change("update", drained, plain)])
    assert provider.records(owner) == (plain,)
    assert provider.answer(owner).addresses == (C,)

    provider.apply([Change("update", plain, split)])
    assert provider.records(owner) == (split,)


def test_weights_are_refused_clearly_where_unsupported(provider: DnsProvider, owner: str) -> None:
    if provider.supports_weights:
        pytest.skip(f"{provider.name} supports weights")
    record = weighted(owner, TTL, {A: 50, B: 50})

    with pytest.raises(FatalError, match="weighted"):
        provider.apply([Change("create", None, record)])

    assert provider.records(owner) == ()


def test_twin_without_weights_refuses_them_like_rfc2136() -> None:
    twin = InMemoryDnsProvider(ZONE, supports_weights=False)
    name = f"contract.{ZONE}"

    with pytest.raises(FatalError, match="weighted"):
        twin.apply([Change("create", None, weighted(name, TTL, {A: 50, B: 50}))])

    assert twin.records(name) == ()


# -- failures by category -------------------------------------------------------------------


def test_unreachable_server_is_transient(backend: Backend, owner: str) -> None:
    down = backend.unreachable()
    record = single(owner, TTL, A)

    with pytest.raises(TransientError):
        down.records(owner)
    with pytest.raises(TransientError):
        down.apply([Change("create", None, record)])
    with pytest.raises(TransientError):
        down.answer(owner)


def test_wrong_credentials_are_fatal_and_do_not_leak(backend: Backend, owner: str) -> None:
    if backend.bad_credentials is None:
        pytest.skip(f"{backend.kind} here checks no credentials")
    impostor, key = backend.bad_credentials()

    with pytest.raises(FatalError) as caught:
        impostor.apply([Change("create", None, single(owner, TTL, A))])

    assert backend.build().records(owner) == ()
    assert key not in str(caught.value)
    assert key not in repr(impostor)


# -- the GSLB controller on each provider ---------------------------------------------------


def test_route_to_converges_and_is_idempotent(provider: DnsProvider, owner: str) -> None:
    ticks = iter(range(100))

    first = route_to([provider], owner, single(owner, TTL, A), clock=lambda: float(next(ticks)))
    again = route_to([provider], owner, single(owner, TTL, A), clock=lambda: float(next(ticks)))
    moved = route_to([provider], owner, single(owner, TTL, B))

    assert [(u.provider, u.changed, u.seconds) for u in first] == [(provider.name, True, 1.0)]
    assert [u.changed for u in again] == [False]
    assert [u.changed for u in moved] == [True]
    assert answers([provider], owner) == {provider.name: (B,)}
    assert verify_answers([provider], owner, B).ok
    assert not verify_answers([provider], owner, A).ok


# -- the registry builds each adapter from the topology -------------------------------------


def _specs(h: Harness, moto: tuple[str, str], edge_url: str) -> dict[str, DnsProviderSpec]:
    return {
        "rfc2136": Rfc2136Provider(
            kind="rfc2136", server="127.0.0.1", port=h.knot.port, tsig_secret="dns/tsig"
        ),
        "powerdns": PowerDnsProvider.model_validate(
            {
                "kind": "powerdns",
                "api_url": h.pdns.api_url.rsplit("/api/", 1)[0],
                "api_key_secret": "dns/pdns",
            }
        ),
        "route53": Route53Provider.model_validate(
            {
                "kind": "route53",
                "hosted_zone_id": moto[1],
                "credentials_secret": "dns/aws",
                "endpoint_url": edge_url,
                "name_servers": [f"127.0.0.1:{h.knot.port}"],
            }
        ),
    }


@pytest.mark.parametrize("kind", ["rfc2136", "powerdns", "route53"])
def test_registry_builds_a_working_adapter_from_the_topology(
    harness: Harness, moto_route53: tuple[str, str], route53_edge: Route53Edge, kind: str
) -> None:
    secrets = InMemorySecretStore()
    secrets.write(
        "dns/tsig",
        {"name": TSIG_KEY_NAME, "algorithm": "hmac-sha256", "secret": harness.creds.tsig_secret},
    )
    secrets.write("dns/pdns", {"api_key": harness.creds.pdns_api_key})
    secrets.write("dns/aws", {"access_key_id": "contract", "secret_access_key": "contract"})

    provider = build_dns_provider(
        _specs(harness, moto_route53, route53_edge.url)[kind], ZONE, secrets
    )
    absent = f"registry-absent-{uuid4().hex[:8]}.{ZONE}"

    assert provider.name == kind
    assert provider.records(absent) == ()
    dns_port = harness.pdns.dns_port if kind == "powerdns" else harness.knot.port
    assert provider.answer(absent) == Answer((ServerAnswer(f"127.0.0.1:{dns_port}", ()),))


@pytest.mark.parametrize("kind", ["rfc2136", "powerdns", "route53"])
def test_registry_names_the_field_of_a_missing_secret(
    harness: Harness, moto_route53: tuple[str, str], kind: str
) -> None:
    spec = _specs(harness, moto_route53, moto_route53[0])[kind]
    with pytest.raises(ConfigError, match=f"dns.providers\\[kind={kind}\\]"):
        build_dns_provider(spec, ZONE, InMemorySecretStore())
