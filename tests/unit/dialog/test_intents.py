"""Intent classification: rules, then example similarity, else a question for retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from support.dialog import BAG_OF_WORDS_DIMENSION as DIM
from support.dialog import bag_of_words_embed as embed
from switchyard.dialog.intents import (
    DEFAULT_INTENTS,
    IntentClassifier,
    IntentMatch,
    IntentSpec,
    Vectors,
)


class CountingEmbed:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        return embed(texts)


REBOOT = IntentSpec("reboot", patterns=(r"\breboot now\b",), examples=("restart the build server",))


def default_classifier() -> IntentClassifier:
    return IntentClassifier(DEFAULT_INTENTS, embed)


def test_rule_match_has_full_confidence() -> None:
    classifier = IntentClassifier([REBOOT], embed)

    assert classifier.classify("Please REBOOT NOW") == IntentMatch("reboot", 1.0, "rule")


def test_similar_message_matches_by_similarity() -> None:
    classifier = IntentClassifier([REBOOT], embed)

    match = classifier.classify("the build server: restart it")

    assert match.name == "reboot"
    assert match.method == "similarity"
    assert 0.6 <= match.confidence <= 1.0


def test_dissimilar_message_is_a_question() -> None:
    classifier = IntentClassifier([REBOOT], embed)

    assert classifier.classify("what is the travel policy") == IntentMatch(
        "question", 0.0, "default"
    )


def test_threshold_decides_between_similarity_and_default() -> None:
    message = "restart the laptop"  # shares 2 of 4 words with the example
    assert IntentClassifier([REBOOT], embed, threshold=0.4).classify(message).name == "reboot"
    assert IntentClassifier([REBOOT], embed, threshold=0.9).classify(message).name == "question"


def test_exclusion_vetoes_rule_and_similarity() -> None:
    spec = IntentSpec(
        "report",
        patterns=(r"\breport phishing\b",),
        examples=("report phishing to it",),
        exclude=(r"^\W*how\b",),
    )
    classifier = IntentClassifier([spec], embed)

    assert classifier.classify("report phishing to IT").method == "rule"
    assert classifier.classify("how report phishing to it").name == "question"


def test_examples_are_embedded_once_and_rules_never_embed() -> None:
    counting = CountingEmbed()
    classifier = IntentClassifier([REBOOT], counting)
    assert counting.texts == ["restart the build server"]

    classifier.classify("reboot now")
    assert len(counting.texts) == 1

    classifier.classify("restart the build server")
    assert len(counting.texts) == 2


def test_classify_with_vector_reuses_the_callers_embedding() -> None:
    counting = CountingEmbed()
    classifier = IntentClassifier([REBOOT], counting)
    message = "restart the build server"

    match = classifier.classify_with_vector(message, embed([message])[0])

    assert match.name == "reboot"
    assert match.method == "similarity"
    assert len(counting.texts) == 1


def test_vector_of_another_dimension_is_refused() -> None:
    classifier = IntentClassifier([REBOOT], embed)

    with pytest.raises(ValueError, match="dimensions"):
        classifier.classify_with_vector("restart", np.ones(DIM + 1, dtype=np.float32))


def test_catalogue_without_examples_never_embeds() -> None:
    def refuse(texts: Sequence[str]) -> Vectors:
        raise AssertionError("embed must not be called")

    classifier = IntentClassifier([IntentSpec("stop", patterns=(r"^stop$",))], refuse)

    assert classifier.classify("stop").name == "stop"
    assert classifier.classify("anything else").name == "question"


@pytest.mark.parametrize(
    ("specs", "problem"),
    [
        ([REBOOT, REBOOT], "distinct"),
        ([IntentSpec("question")], "question"),
        ([IntentSpec("broken", patterns=("(",))], "bad regex"),
    ],
)
def test_invalid_catalogue_is_refused(specs: list[IntentSpec], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        IntentClassifier(specs, embed)


def test_embed_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        IntentClassifier([REBOOT], lambda texts: np.zeros((3,), dtype=np.float32))


@pytest.mark.parametrize(
    "message",
    [
        "how do I reset my password?",
        "How do I report a phishing email",
        "how can I report a lost laptop?",
        "what is the policy on working from home?",
        "where do I find the VPN client?",
        "can I expense a new keyboard?",
        "Is there a holiday policy",
        "how do I stop Teams from starting at login?",
        "hi, how do I set up MFA?",
        "thanks, how do I get a parking permit?",
        "the VPN keeps disconnecting",
    ],
)
def test_policy_questions_stay_questions(message: str) -> None:
    assert default_classifier().classify(message).name == "question"


@pytest.mark.parametrize(
    "message",
    [
        "please open a ticket",
        "Open a new IT ticket for me",
        "I want to raise a ticket about my VPN",
        "my laptop is broken, can you log it",
        "I need IT to fix my printer",
        "could you please file this for me",
        "log an incident: the projector is dead",
    ],
)
def test_ticket_requests_are_open_ticket_by_rule(message: str) -> None:
    assert default_classifier().classify(message) == IntentMatch("open_ticket", 1.0, "rule")


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("hello", "greeting"),
        ("Hi there!", "greeting"),
        ("good morning", "greeting"),
        ("what can you do?", "help"),
        ("help", "help"),
        ("how can you help me", "help"),
        ("cancel", "cancel"),
        ("never mind", "cancel"),
        ("Stop!", "cancel"),
        ("forget it", "cancel"),
        ("thanks!", "goodbye"),
        ("great, thanks a lot", "goodbye"),
        ("bye", "goodbye"),
        ("thank you so much for your help", "goodbye"),
    ],
)
def test_small_talk_and_control_words_by_rule(message: str, intent: str) -> None:
    assert default_classifier().classify(message) == IntentMatch(intent, 1.0, "rule")
