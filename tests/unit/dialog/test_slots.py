"""Slot parsers and extractors: normalised values, or a reason the user can act on."""

from __future__ import annotations

import pytest

from switchyard.dialog.slots import (
    CATEGORIES,
    CATEGORY_SYNONYMS,
    SlotError,
    SlotValue,
    choice,
    free_text,
    mentions,
    summary_from_request,
    ticket_slots,
    yes_no,
)

SLOTS = {spec.name: spec for spec in ticket_slots()}


def category(text: str) -> SlotValue | SlotError:
    return choice(CATEGORIES, CATEGORY_SYNONYMS)(text)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("hardware", "hardware"),
        ("  Software ", "software"),
        ("it's my laptop", "hardware"),
        ("the monitor and the docking station", "hardware"),
        ("password", "access"),
        ("I'm locked out", "access"),
        ("Wi-Fi", "network"),
        ("wifi keeps dropping", "network"),
        ("something else", "other"),
    ],
)
def test_category_accepts_options_and_synonyms(answer: str, value: str) -> None:
    assert category(answer) == SlotValue(value)


def test_unknown_category_is_refused_with_the_options() -> None:
    result = category("banana")

    assert isinstance(result, SlotError)
    assert "hardware, software, access, network or other" in result.reason


def test_two_categories_are_refused_naming_both() -> None:
    result = category("my laptop won't join the wifi")

    assert isinstance(result, SlotError)
    assert "hardware or network" in result.reason


def test_synonym_of_an_unknown_option_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown options: hardwear"):
        choice(CATEGORIES, {"laptop": "hardwear"})


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("high", "high"),
        ("URGENT", "high"),
        ("asap please", "high"),
        ("normal", "normal"),
        ("medium", "normal"),
        ("low", "low"),
        ("not urgent", "low"),
        ("no rush", "low"),
    ],
)
def test_urgency_accepts_levels_and_synonyms(answer: str, value: str) -> None:
    assert SLOTS["urgency"].parse(answer) == SlotValue(value)


def test_unknown_urgency_is_refused_with_the_levels() -> None:
    result = SLOTS["urgency"].parse("purple")

    assert isinstance(result, SlotError)
    assert "low, normal or high" in result.reason


def test_free_text_collapses_whitespace() -> None:
    assert free_text(5, 50)("  the  screen\n flickers ") == SlotValue("the screen flickers")


@pytest.mark.parametrize(("answer", "hint"), [("meh", "at least 10"), ("x" * 501, "under 500")])
def test_free_text_outside_its_length_is_refused(answer: str, hint: str) -> None:
    result = free_text(10, 500)(answer)

    assert isinstance(result, SlotError)
    assert hint in result.reason


def test_free_text_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="min_chars"):
        free_text(20, 10)


@pytest.mark.parametrize(
    ("answer", "value"),
    [("yes", "yes"), ("Yes please!", "yes"), ("sure, go ahead", "yes"), ("no", "no")],
)
def test_yes_no(answer: str, value: str) -> None:
    assert yes_no()(answer) == SlotValue(value)


@pytest.mark.parametrize("answer", ["maybe", "yes no", "what?"])
def test_yes_no_refuses_anything_else(answer: str) -> None:
    assert isinstance(yes_no()(answer), SlotError)


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("my laptop screen is broken", "hardware"),
        ("I have a network problem", "network"),
        ("my laptop won't join the wifi", None),  # two categories: ask, don't guess
        ("the other day something broke", None),  # "other" is an ordinary word
        ("open a ticket", None),
    ],
)
def test_category_prefill_only_when_plain(message: str, value: str | None) -> None:
    extract = SLOTS["category"].extract
    assert extract is not None
    assert extract(message) == (None if value is None else SlotValue(value))


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("my laptop is broken and it's urgent", "high"),
        ("no rush, but my mouse is sticky", "low"),
        ("my battery is low", None),  # the bare level is an ordinary word
        ("my laptop is broken", None),
    ],
)
def test_urgency_prefill_only_on_explicit_cues(message: str, value: str | None) -> None:
    extract = SLOTS["urgency"].extract
    assert extract is not None
    assert extract(message) == (None if value is None else SlotValue(value))


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        ("my laptop screen is broken, can you log it?", "my laptop screen is broken"),
        (
            "Hi, could you open a ticket for me? The projector in room 4 won't turn on.",
            "The projector in room 4 won't turn on",
        ),
        ("Please open a new IT ticket: outlook crashes on start", "outlook crashes on start"),
        ("I need IT to fix my printer", "fix my printer"),
        ("open a ticket", None),
        ("please open a ticket", None),
        ("raise a ticket about my VPN", None),  # too little left to be a summary
    ],
)
def test_summary_is_what_remains_of_a_ticket_request(message: str, summary: str | None) -> None:
    extract = summary_from_request(10, 500)
    assert extract(message) == (None if summary is None else SlotValue(summary))


def test_mentions_finds_one_value_or_none() -> None:
    extract = mentions({"vpn": "network", "laptop": "hardware"})

    assert extract("VPN drops") == SlotValue("network")
    assert extract("laptop VPN") is None
    assert extract("nothing here") is None
