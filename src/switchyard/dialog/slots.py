"""Slots a dialog flow fills, and the parsers that validate what the user typed.

A parser is a pure function ``str -> SlotValue | SlotError``: either the normalised value the
tool will receive, or a reason written for the user ("Please choose one of: ..."), which the
manager shows before asking again. Parsers never raise on user input.

An extractor (``str -> SlotValue | None``) is the stricter cousin used to pre-fill a slot from
the message that started the flow: it returns a value only when the message states it plainly
and unambiguously, because a wrong pre-fill is worse than one more question.

Matching is on whole words after normalisation (lower case, punctuation to spaces), longest
phrase first, so "not urgent" is found before (and instead of) "urgent", and "wi-fi" and
"wifi" are both found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlotValue:
    """A parsed, normalised slot value (what the tool receives)."""

    value: str


@dataclass(frozen=True, slots=True)
class SlotError:
    """Why an answer was not accepted, as a sentence the user can act on."""

    reason: str


Parser = Callable[[str], SlotValue | SlotError]
"""Validates one answer; never raises on user input."""

Extractor = Callable[[str], SlotValue | None]
"""Finds a value stated plainly in a free message, or None; never raises."""


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One slot of a flow: its name (the tool argument), the question that asks for it, how an
    answer is validated, and how the opening message may pre-fill it (None: never)."""

    name: str
    prompt: str
    parse: Parser
    extract: Extractor | None = None


def normalise(text: str) -> str:
    """Lower case, every run of non-alphanumerics to one space, padded with one space each side,
    so ``f" {phrase} " in normalise(text)`` is a whole-word match."""
    return " " + " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split()) + " "


def find_mentions(text: str, phrases: Mapping[str, str]) -> frozenset[str]:
    """The distinct values whose phrases occur in ``text`` as whole words.

    Longer phrases are matched first and blanked out, so a phrase inside a longer one that
    matched ("urgent" in "not urgent") does not count again.
    """
    remaining = normalise(text)
    found: set[str] = set()
    for phrase in sorted(phrases, key=lambda p: len(normalise(p)), reverse=True):
        key = normalise(phrase)
        if key.strip() and key in remaining:
            found.add(phrases[phrase])
            remaining = remaining.replace(key, " | ")
    return frozenset(found)


def _listing(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def choice(options: Sequence[str], synonyms: Mapping[str, str] | None = None) -> Parser:
    """A parser accepting exactly one of ``options``, named or through a synonym.

    Every synonym must map to one of the options (checked here, so a typo fails at start-up).
    An answer mentioning two different options is refused with both named, not guessed.
    """
    phrases = _choice_phrases(options, synonyms or {})
    listed = _listing(list(options))

    def parse(text: str) -> SlotValue | SlotError:
        found = find_mentions(text, phrases)
        if len(found) == 1:
            return SlotValue(next(iter(found)))
        if not found:
            return SlotError(f"Sorry, I didn't catch that. Please choose one of: {listed}.")
        both = _listing([o for o in options if o in found])
        return SlotError(f"That sounds like more than one: {both}. Which one fits best?")

    return parse


def mentions(phrases: Mapping[str, str]) -> Extractor:
    """An extractor returning the one value whose phrases occur in a message (None if no value
    or several values occur)."""
    table = dict(phrases)

    def extract(text: str) -> SlotValue | None:
        found = find_mentions(text, table)
        return SlotValue(next(iter(found))) if len(found) == 1 else None

    return extract


def free_text(min_chars: int = 10, max_chars: int = 500) -> Parser:
    """A parser accepting text of ``min_chars..max_chars`` characters after trimming and
    collapsing whitespace (the value is the collapsed text)."""
    if not 0 < min_chars <= max_chars:
        raise ValueError("free_text needs 0 < min_chars <= max_chars")

    def parse(text: str) -> SlotValue | SlotError:
        value = " ".join(text.split())
        if len(value) < min_chars:
            return SlotError(
                f"Could you describe it in a few more words (at least {min_chars} characters)?"
            )
        if len(value) > max_chars:
            return SlotError(f"That's a bit long; please keep it under {max_chars} characters.")
        return SlotValue(value)

    return parse


def yes_no() -> Parser:
    """A parser for a confirmation: ``"yes"`` or ``"no"``; anything else, or both, is refused."""
    return choice(("yes", "no"), _YES_NO)


def _choice_phrases(options: Sequence[str], synonyms: Mapping[str, str]) -> dict[str, str]:
    if not options or len(set(options)) != len(options):
        raise ValueError("choice needs distinct options")
    stray = sorted(v for v in synonyms.values() if v not in options)
    if stray:
        raise ValueError(f"choice synonyms map to unknown options: {', '.join(stray)}")
    return {**{o: o for o in options}, **synonyms}


_YES_NO: Mapping[str, str] = {
    "y": "yes",
    "yeah": "yes",
    "yep": "yes",
    "yup": "yes",
    "sure": "yes",
    "ok": "yes",
    "okay": "yes",
    "go ahead": "yes",
    "please do": "yes",
    "do it": "yes",
    "confirm": "yes",
    "correct": "yes",
    "n": "no",
    "nope": "no",
    "nah": "no",
    "don t": "no",
    "do not": "no",
}

# The ticket slots. Synonyms are the words people actually use for the thing that broke; a
# word that names two categories equally (e.g. "outlook" for "can't log in to outlook") is
# left out so the parser asks rather than guesses.
# fmt: off
CATEGORIES = ("hardware", "software", "access", "network", "other")
CATEGORY_SYNONYMS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "laptop", "computer", "pc", "desktop", "monitor", "screen", "keyboard", "mouse",
            "printer", "scanner", "dock", "docking station", "headset", "webcam", "battery",
            "charger", "hard drive", "device",
        ),
        "hardware",
    ),
    **dict.fromkeys(
        (
            "app", "application", "program", "install", "installation", "update", "upgrade",
            "excel", "teams", "browser", "licence", "license",
        ),
        "software",
    ),
    **dict.fromkeys(
        (
            "password", "login", "log in", "sign in", "account", "locked out", "permission",
            "permissions", "mfa", "2fa", "authenticator",
        ),
        "access",
    ),
    **dict.fromkeys(
        ("wifi", "wi fi", "wireless", "internet", "vpn", "ethernet", "connection", "connectivity"),
        "network",
    ),
    "something else": "other",
}
# fmt: on

# What pre-fills the category: the synonyms and the named categories except "other", which is
# an ordinary word ("the other day") rather than a statement about the problem.
CATEGORY_CUES: Mapping[str, str] = {
    **{c: c for c in CATEGORIES if c != "other"},
    **{phrase: c for phrase, c in CATEGORY_SYNONYMS.items() if c != "other"},
}

URGENCIES = ("low", "normal", "high")
URGENCY_SYNONYMS: Mapping[str, str] = {
    "urgent": "high",
    "asap": "high",
    "as soon as possible": "high",
    "critical": "high",
    "emergency": "high",
    "blocking": "high",
    "high priority": "high",
    "medium": "normal",
    "moderate": "normal",
    "standard": "normal",
    "normal priority": "normal",
    "not urgent": "low",
    "no rush": "low",
    "whenever": "low",
    "low priority": "low",
}

# Only explicit urgency words pre-fill urgency: the bare options are ordinary words ("my
# battery is low", "it worked normally"), which must not decide a ticket's priority.
URGENCY_CUES: Mapping[str, str] = {
    phrase: value
    for phrase, value in URGENCY_SYNONYMS.items()
    if phrase not in ("medium", "moderate", "standard", "whenever")
}

# Phrases that ask for a ticket rather than describe the problem; the summary is what is left.
_TICKET = r"(?:an?\s+)?(?:new\s+)?(?:it\s+|support\s+|helpdesk\s+)?(?:ticket|incident|case)"
_REQUEST_PHRASES = re.compile(
    rf"""
    \b(?:hi|hello|hey)\b[\s,!.]*
    | \b(?:please\s+)?
      (?:(?:can|could|would|will)\s+you\s+(?:please\s+)?
        | i\s+(?:want|need|would\s+like|d\s+like)\s+to\s+)?
      (?:open|raise|create|log|file|submit|report)\s+(?:{_TICKET}|it|this|that)\b
      (?:\s+for\s+me)?(?:\s+please)?
    | \bi\s+need\s+(?:the\s+)?(?:it(?:\s+team)?|helpdesk|help\s+desk|support)\s+to\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
_LEADING_FILLER = re.compile(
    r"^(?:[\s,.;:!?-]|\b(?:and|so|please|for|about|regarding|because|as)\b)+", re.IGNORECASE
)


def summary_from_request(min_chars: int = 10, max_chars: int = 500) -> Extractor:
    """An extractor taking the problem description out of a ticket request: "my laptop screen
    is broken, can you log it?" gives "my laptop screen is broken"; "open a ticket" gives None
    (nothing is left once the request itself is removed)."""
    parse = free_text(min_chars, max_chars)

    def extract(text: str) -> SlotValue | None:
        left = _REQUEST_PHRASES.sub(" ", text)
        left = _LEADING_FILLER.sub("", " ".join(left.split()))
        left = left.rstrip(" ,;:-?!.")
        parsed = parse(left)
        return parsed if isinstance(parsed, SlotValue) and len(left.split()) >= 2 else None

    return extract


def ticket_slots() -> tuple[SlotSpec, ...]:
    """The slots of the IT-ticket flow, in the order they are asked for."""
    category = choice(CATEGORIES, CATEGORY_SYNONYMS)
    return (
        SlotSpec(
            name="category",
            prompt="What kind of problem is it: hardware, software, access, network or other?",
            parse=category,
            extract=mentions(CATEGORY_CUES),
        ),
        SlotSpec(
            name="summary",
            prompt="Please describe the problem in a sentence or two.",
            parse=free_text(10, 500),
            extract=summary_from_request(10, 500),
        ),
        SlotSpec(
            name="urgency",
            prompt="How urgent is it: low, normal or high?",
            parse=choice(URGENCIES, URGENCY_SYNONYMS),
            extract=mentions(URGENCY_CUES),
        ),
    )
