"""What verifies a DNS move: every provider's change settled and every server it asked
answering exactly the new address; the evidence says who was asked and what they said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard.devenv.layout import repo_root
from switchyard.domain.dns import (
    Answer,
    ChangeStatus,
    ServerAnswer,
    judge_answers,
    parse_server,
)
from switchyard.errors import ConfigError
from switchyard.topology import Route53Provider, load_topology

OLD, NEW = "10.0.1.1", "10.0.2.1"
INSYNC = ChangeStatus("C1", "INSYNC", settled=True)
PENDING = ChangeStatus("C2", "PENDING", settled=False)


def answered(*servers: tuple[str, tuple[str, ...]], change: ChangeStatus | None = None) -> Answer:
    return Answer(tuple(ServerAnswer(name, addresses) for name, addresses in servers), change)


def test_every_server_answering_the_address_with_the_change_in_sync_verifies() -> None:
    seen = {
        "route53": answered(("ns-1:53", (NEW,)), ("ns-2:53", (NEW,)), change=INSYNC),
        "rfc2136": answered(("127.0.0.1:25460", (NEW,))),
    }

    check = judge_answers(seen, NEW)

    assert check.ok
    assert check.reason.startswith(f"every authoritative server answers {NEW}")
    assert "route53 asked ns-1:53 answers 10.0.2.1; ns-2:53 answers 10.0.2.1" in check.reason
    assert check.detail == {
        "route53": {
            "asked": ["ns-1:53", "ns-2:53"],
            "answers": {"ns-1:53": [NEW], "ns-2:53": [NEW]},
            "change": "INSYNC",
            "change_id": "C1",
        },
        "rfc2136": {"asked": ["127.0.0.1:25460"], "answers": {"127.0.0.1:25460": [NEW]}},
    }


def test_one_stale_server_of_several_fails_and_is_named() -> None:
    seen = {"route53": answered(("ns-1:53", (NEW,)), ("ns-2:53", (OLD,)), change=INSYNC)}

    check = judge_answers(seen, NEW)

    assert not check.ok
    assert f"ns-2:53 answers {OLD}" in check.reason
    assert seen["route53"].addresses == (OLD, NEW)  # the union: it would hide the stale one


def test_a_server_with_no_answer_fails() -> None:
    check = judge_answers({"route53": answered(("ns-1:53", ()), change=INSYNC)}, NEW)

    assert not check.ok
    assert "ns-1:53 answers nothing" in check.reason


def test_a_pending_change_fails_even_when_every_server_answers() -> None:
    check = judge_answers({"route53": answered(("ns-1:53", (NEW,)), change=PENDING)}, NEW)

    assert not check.ok
    assert "change C2 PENDING" in check.reason
    assert check.detail["route53"] == {
        "asked": ["ns-1:53"],
        "answers": {"ns-1:53": [NEW]},
        "change": "PENDING",
        "change_id": "C2",
    }


def test_more_than_the_address_fails() -> None:
    check = judge_answers({"powerdns": answered(("127.0.0.1:25461", (NEW, OLD)))}, NEW)

    assert not check.ok


def test_one_stale_provider_fails_the_whole_check_and_both_are_recorded() -> None:
    seen = {
        "rfc2136": answered(("127.0.0.1:25460", (NEW,))),
        "powerdns": answered(("127.0.0.1:25461", (OLD,))),
    }

    check = judge_answers(seen, NEW)

    assert not check.ok
    assert "powerdns: 127.0.0.1:25461 answers 10.0.1.1" in check.reason
    assert "rfc2136" not in check.reason
    assert set(check.detail) == {"rfc2136", "powerdns"}


def test_no_provider_verifies_nothing() -> None:
    assert not judge_answers({}, NEW).ok


def test_an_answer_names_each_server_once_and_sorts_addresses() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        Answer(())
    with pytest.raises(ValueError, match="asked twice"):
        answered(("ns-1:53", (NEW,)), ("ns-1:53", (NEW,)))
    assert ServerAnswer("a:53", ("10.0.2.1", "10.0.1.1", "10.0.10.1")).addresses == (
        "10.0.1.1",
        "10.0.2.1",
        "10.0.10.1",
    )


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:25460", ("127.0.0.1", 25460)),
        ("ns-1.awsdns-01.org", ("ns-1.awsdns-01.org", 53)),
        ("NS-2.awsdns-02.COM.:53", ("ns-2.awsdns-02.com.", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_name_servers_parse_as_host_and_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_server(text) == parsed


@pytest.mark.parametrize(
    "text", ["", "host:", "host:0", "host:65536", "host:53:1", "::1", "[::1", "[nope]:53", "a b"]
)
def test_malformed_name_servers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="name server"):
        parse_server(text)


# -- the topology's Route 53 provider -------------------------------------------------------


def route53_topology(tmp_path: Path, **fields: Any) -> Path:
    example = repo_root() / "config" / "topology.example.yaml"
    data: dict[str, Any] = yaml.safe_load(example.read_text())
    data["dns"]["providers"].append({"kind": "route53", "hosted_zone_id": "Z1", **fields})
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_route53_name_servers_and_change_wait_load_from_the_topology(tmp_path: Path) -> None:
    path = route53_topology(
        tmp_path, name_servers=["127.0.0.1:25460", "ns-1.awsdns-01.org"], change_wait_seconds=2
    )

    (route53,) = [p for p in load_topology(path).dns.providers if p.kind == "route53"]

    assert isinstance(route53, Route53Provider)
    assert route53.name_servers == ("127.0.0.1:25460", "ns-1.awsdns-01.org")
    assert route53.change_wait_seconds == 2


def test_route53_defaults_to_the_delegation_set(tmp_path: Path) -> None:
    (route53,) = [
        p for p in load_topology(route53_topology(tmp_path)).dns.providers if p.kind == "route53"
    ]

    assert isinstance(route53, Route53Provider)
    assert route53.name_servers is None
    assert route53.change_wait_seconds == 3.0


@pytest.mark.parametrize("servers", [["127.0.0.1:99999"], []])
def test_a_bad_route53_name_server_list_names_the_field(tmp_path: Path, servers: list[str]) -> None:
    path = route53_topology(tmp_path, name_servers=servers)

    with pytest.raises(ConfigError) as err:
        load_topology(path)

    assert "name_servers" in err.value.field
