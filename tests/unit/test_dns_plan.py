"""The DNS core on plain values: record sets, the planner, and the GSLB controller on twins."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchyard.adapters.dns_memory import InMemoryDnsProvider
from switchyard.adapters.dns_powerdns import api_base, lua_weighted, parse_lua_weighted
from switchyard.controller.gslb import ProviderUpdate, answers, route_to
from switchyard.domain.dns import (
    Answer,
    Change,
    RecordSet,
    apply_changes,
    plan,
    single,
    weighted,
)
from switchyard.errors import ConflictError, TransientError

ZONE = "gslb.example."
CHAT = f"chat.{ZONE}"
A, B, C = "127.0.1.1", "127.0.2.1", "127.0.10.1"


# -- RecordSet ------------------------------------------------------------------------------


def test_values_are_sorted_numerically_with_their_weights() -> None:
    record = RecordSet("Chat.GSLB.Example.", "A", 30, (C, B, A), (3, 2, 1))

    assert record.name == CHAT
    assert record.values == (A, B, C)  # 127.0.10.1 after 127.0.2.1: numeric, not text
    assert record.weights == (1, 2, 3)
    assert record == weighted(CHAT, 30, {A: 1, B: 2, C: 3})


def test_weighted_and_unweighted_sets_differ_even_with_equal_weights() -> None:
    assert weighted(CHAT, 30, {A: 1}) != single(CHAT, 30, A)


def test_answered_leaves_out_zero_weights() -> None:
    assert weighted(CHAT, 30, {A: 0, B: 5}).answered == (B,)
    assert RecordSet(CHAT, "A", 30, (B, A)).answered == (A, B)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"name": "chat.gslb.example"}, "fully qualified"),
        ({"name": "chat..example."}, "invalid label"),
        ({"name": "ch at.example."}, "invalid label"),
        ({"rtype": "AAAA"}, "only A"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": 86401}, "ttl"),
        ({"values": ()}, "no addresses"),
        ({"values": ("not-an-ip",)}, "not an IPv4"),
        ({"values": ("::1",)}, "not an IPv4"),
        ({"values": (A, A)}, "twice"),
        ({"weights": (1, 2)}, "weights"),
        ({"weights": (256,)}, "0..255"),
        ({"weights": (0,)}, "positive weight"),
    ],
)
def test_invalid_record_sets_are_refused(kwargs: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"name": CHAT, "rtype": "A", "ttl": 30, "values": (A,)}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=problem):
        RecordSet(**fields)  # type: ignore[arg-type]


def test_change_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="after and no before"):
        Change("create", single(CHAT, 30, A), single(CHAT, 30, B))
    with pytest.raises(ValueError, match="changes nothing"):
        Change("update", single(CHAT, 30, A), single(CHAT, 30, A))
    with pytest.raises(ValueError, match="name and type"):
        Change("update", single(CHAT, 30, A), single(f"www.{ZONE}", 30, A))


def test_change_describes_itself_in_one_line() -> None:
    change = Change("update", single(CHAT, 30, A), weighted(CHAT, 60, {A: 80, B: 20}))

    assert change.describe() == (
        f"update {CHAT} A: 127.0.1.1 ttl 30 -> 127.0.1.1=80, 127.0.2.1=20 ttl 60"
    )


# -- plan -----------------------------------------------------------------------------------


def test_equal_sides_plan_nothing() -> None:
    records = [single(CHAT, 30, A), single(f"www.{ZONE}", 30, B)]

    assert plan(records, list(reversed(records))) == ()


def test_plan_creates_updates_and_deletes_sorted_by_name() -> None:
    www, api, old = f"www.{ZONE}", f"api.{ZONE}", f"old.{ZONE}"
    current = [single(CHAT, 30, A), single(old, 30, A), single(www, 30, A)]
    desired = [single(CHAT, 30, B), single(api, 30, C), single(www, 30, A)]

    changes = plan(current, desired)

    assert changes == (
        Change("create", None, single(api, 30, C)),
        Change("update", single(CHAT, 30, A), single(CHAT, 30, B)),
        Change("delete", single(old, 30, A), None),
    )


def test_a_ttl_or_weight_change_is_an_update() -> None:
    assert plan([single(CHAT, 30, A)], [single(CHAT, 60, A)])[0].action == "update"
    split = weighted(CHAT, 30, {A: 50, B: 50})
    assert plan([split], [weighted(CHAT, 30, {A: 90, B: 10})])[0].action == "update"


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="two record sets"):
        plan([single(CHAT, 30, A), single(CHAT, 30, B)], [])


def test_apply_changes_refuses_a_stale_before_and_changes_nothing() -> None:
    current = [single(CHAT, 30, B)]

    with pytest.raises(ConflictError, match=CHAT):
        apply_changes(current, [Change("update", single(CHAT, 30, A), single(CHAT, 30, C))])

    assert current == [single(CHAT, 30, B)]


names = st.sampled_from([f"{label}.{ZONE}" for label in ("chat", "www", "api", "old")])
addresses = st.lists(
    st.integers(min_value=1, max_value=2**24 - 1).map(
        lambda n: f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


@st.composite
def record_sets(draw: st.DrawFn) -> RecordSet:
    values = draw(addresses)
    weights = None
    if draw(st.booleans()):
        drawn = draw(st.lists(st.integers(0, 255), min_size=len(values), max_size=len(values)))
        weights = tuple(drawn) if any(drawn) else None
    return RecordSet(draw(names), "A", draw(st.sampled_from([30, 60])), tuple(values), weights)


def zones() -> st.SearchStrategy[list[RecordSet]]:
    return st.lists(record_sets(), max_size=4, unique_by=lambda r: r.key)


@settings(max_examples=300)
@given(current=zones(), desired=zones())
def test_applying_the_plan_to_current_yields_desired(
    current: list[RecordSet], desired: list[RecordSet]
) -> None:
    changes = plan(current, desired)

    assert apply_changes(current, changes) == tuple(sorted(desired, key=lambda r: r.key))
    assert plan(apply_changes(current, changes), desired) == ()
    assert len({change.key for change in changes}) == len(changes)


# -- PowerDNS LUA text (pure helpers) -------------------------------------------------------


def test_lua_record_round_trips() -> None:
    record = weighted(CHAT, 30, {B: 20, A: 80})
    content = lua_weighted(record)

    assert content == "A \"pickwrandom({{80, '127.0.1.1'}, {20, '127.0.2.1'}})\""
    assert parse_lua_weighted(CHAT, 30, content) == record


@pytest.mark.parametrize(
    "content",
    [
        "A \"pickrandom({'127.0.1.1', '127.0.2.1'})\"",
        "A \"pickwrandom({{80, '127.0.1.1'}, os.exit()})\"",
        "A \"pickwrandom({{80, 'not-an-ip'}})\"",
    ],
)
def test_foreign_lua_records_are_not_parsed(content: str) -> None:
    assert parse_lua_weighted(CHAT, 30, content) is None


def test_api_base_accepts_server_or_full_url() -> None:
    assert api_base("http://127.0.0.1:8081/") == "http://127.0.0.1:8081/api/v1/servers/localhost"
    full = "http://127.0.0.1:8081/api/v1/servers/localhost"
    assert api_base(full) == full


# -- route_to on in-memory twins ------------------------------------------------------------


class Interfering:
    """A provider wrapper whose first apply loses a race: another writer moves the record."""

    def __init__(self, inner: InMemoryDnsProvider, rival: RecordSet) -> None:
        self.inner = inner
        self.rival = rival
        self.name = inner.name
        self.supports_weights = inner.supports_weights
        self.applies = 0

    def records(self, name: str) -> tuple[RecordSet, ...]:
        return self.inner.records(name)

    def apply(self, changes: Sequence[Change]) -> None:
        self.applies += 1
        if self.applies == 1:
            self.inner.apply(plan(self.inner.records(self.rival.name), [self.rival]))
        self.inner.apply(changes)

    def answer(self, name: str) -> Answer:
        return self.inner.answer(name)


def twin(name: str, *records: RecordSet) -> InMemoryDnsProvider:
    provider = InMemoryDnsProvider(ZONE, name=name)
    provider.apply(plan([], list(records)))
    return provider


def test_route_to_changes_only_what_differs_and_measures_with_the_clock() -> None:
    stale, fresh = twin("a", single(CHAT, 30, A)), twin("b", single(CHAT, 30, B))
    ticks = iter([10.0, 10.5, 20.0, 20.25])

    updates = route_to([stale, fresh], CHAT, single(CHAT, 30, B), clock=lambda: next(ticks))

    assert [(u.provider, u.changed, u.seconds) for u in updates] == [
        ("a", True, 0.5),
        ("b", False, 0.25),
    ]
    assert updates[0].reason == f"a: update {CHAT} A: 127.0.1.1 ttl 30 -> 127.0.2.1 ttl 30"
    assert answers([stale, fresh], CHAT) == {"a": (B,), "b": (B,)}


def test_route_to_twice_changes_nothing_the_second_time() -> None:
    provider = twin("a")

    first = route_to([provider], CHAT, single(CHAT, 30, A))
    second = route_to([provider], CHAT, single(CHAT, 30, A))

    assert [u.changed for u in first + second] == [True, False]


def test_route_to_retries_once_after_a_conflict() -> None:
    inner = twin("a", single(CHAT, 30, A))
    racing = Interfering(inner, rival=single(CHAT, 30, C))

    (update,) = route_to([racing], CHAT, single(CHAT, 30, B))

    assert racing.applies == 2
    assert update == ProviderUpdate("a", True, update.seconds, update.reason)
    assert update.reason.endswith("after one conflict")
    assert inner.records(CHAT) == (single(CHAT, 30, B),)


def test_route_to_tries_every_provider_then_raises_the_first_failure() -> None:
    down, up = twin("down", single(CHAT, 30, A)), twin("up", single(CHAT, 30, A))
    down.set_reachable(False)

    with pytest.raises(TransientError) as caught:
        route_to([down, up], CHAT, single(CHAT, 30, B))

    assert up.records(CHAT) == (single(CHAT, 30, B),)
    assert any(note.startswith("up: update") for note in caught.value.__notes__)


def test_route_to_refuses_a_record_for_another_name() -> None:
    with pytest.raises(ValueError, match="is not"):
        route_to([twin("a")], CHAT, single(f"www.{ZONE}", 30, A))


def test_answers_needs_distinct_provider_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        answers([twin("a"), twin("a")], CHAT)
