"""What a message asks for: rules first, then embedding similarity, else a question for RAG.

Classification order, and why:

1. **Exclusions.** A spec may name patterns that rule it out entirely ("how do I report a
   phishing email?" names no ticket to open, however close it sounds to "report this").
2. **Rules** (case-insensitive regex search, confidence 1.0): tight phrases that leave no
   doubt, so common requests never depend on the model.
3. **Similarity**: the highest cosine similarity between the message and any example of an
   intent, if it reaches ``threshold``; confidence is that similarity.
4. **Default**: ``question`` with confidence 0 — the message goes to retrieval.

The embedding function is injected. It must return one L2-normalised float row per text, so a
dot product is the cosine similarity; no dimension is assumed. Examples are embedded once, at
construction. ``classify_with_vector`` takes a message vector the caller already has (the
runtime embeds every message once, for retrieval) so a message is never embedded twice, and
``classify`` embeds only when no rule decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

QUESTION = "question"
GREETING = "greeting"
HELP = "help"
OPEN_TICKET = "open_ticket"
CANCEL = "cancel"
GOODBYE = "goodbye"

IntentMethod = Literal["rule", "similarity", "default"]

Vectors = NDArray[np.float32]
Embed = Callable[[Sequence[str]], Vectors]
"""Texts to L2-normalised float32 rows, one per text (shape ``(len(texts), dim)``)."""


@dataclass(frozen=True, slots=True)
class IntentSpec:
    """An intent: regexes that decide it outright, examples to compare against, and regexes
    that rule it out (checked first, for rules and similarity alike)."""

    name: str
    patterns: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The classification of one message; ``confidence`` is in [0, 1] (1.0 for a rule)."""

    name: str
    confidence: float
    method: IntentMethod


DEFAULT_MATCH = IntentMatch(QUESTION, 0.0, "default")


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]

    def excluded(self, message: str) -> bool:
        return any(p.search(message) for p in self.exclude)

    def ruled(self, message: str) -> bool:
        return any(p.search(message) for p in self.patterns)


class IntentClassifier:
    """Classifies messages against a fixed catalogue of intents.

    Invariants: spec names are distinct and none is ``question`` (the default belongs to no
    spec); every pattern compiles (checked at construction); the example matrix has one
    normalised row per example, built once.
    """

    def __init__(self, specs: Sequence[IntentSpec], embed: Embed, threshold: float = 0.6) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names) or QUESTION in names:
            raise ValueError("intent names must be distinct and must not be 'question'")
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self._threshold = threshold
        self._specs = tuple(_compile(s) for s in specs)
        self._embed = embed
        texts = [e for s in specs for e in s.examples]
        # Row i of the matrix belongs to the intent at _owners[i].
        self._owners = tuple(i for i, s in enumerate(specs) for _ in s.examples)
        self._examples = _rows(embed(texts), len(texts)) if texts else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._specs)

    def classify(self, message: str) -> IntentMatch:
        """Classify ``message``, embedding it only if no rule decides."""
        ruled = self._by_rule(message)
        if ruled is not None or self._examples is None:
            return ruled or DEFAULT_MATCH
        return self._by_similarity(message, _rows(self._embed([message]), 1)[0])

    def classify_with_vector(self, message: str, vector: Vectors) -> IntentMatch:
        """Classify ``message`` whose embedding (same model, normalised) is ``vector``."""
        ruled = self._by_rule(message)
        if ruled is not None or self._examples is None:
            return ruled or DEFAULT_MATCH
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if row.shape[0] != self._examples.shape[1]:
            raise ValueError(
                f"message vector has {row.shape[0]} dimensions, examples have "
                f"{self._examples.shape[1]}"
            )
        return self._by_similarity(message, row)

    def _by_rule(self, message: str) -> IntentMatch | None:
        for spec in self._specs:
            if not spec.excluded(message) and spec.ruled(message):
                return IntentMatch(spec.name, 1.0, "rule")
        return None

    def _by_similarity(self, message: str, row: Vectors) -> IntentMatch:
        assert self._examples is not None  # callers checked
        excluded = {i for i, spec in enumerate(self._specs) if spec.excluded(message)}
        best_score, best_owner = -1.0, -1
        for owner, score in zip(self._owners, (self._examples @ row).tolist(), strict=True):
            if owner not in excluded and score > best_score:
                best_score, best_owner = float(score), owner
        if best_owner < 0 or best_score < self._threshold:
            return DEFAULT_MATCH
        # Rounding can push a normalised dot product a hair past 1.
        return IntentMatch(self._specs[best_owner].name, min(best_score, 1.0), "similarity")


def _compile(spec: IntentSpec) -> _Compiled:
    def each(patterns: tuple[str, ...], field: str) -> tuple[re.Pattern[str], ...]:
        try:
            return tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        except re.error as exc:
            raise ValueError(f"intent {spec.name}: {field}: bad regex: {exc}") from exc

    return _Compiled(spec.name, each(spec.patterns, "patterns"), each(spec.exclude, "exclude"))


def _rows(vectors: Vectors, count: int) -> Vectors:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != count:
        raise ValueError(f"embed returned shape {matrix.shape}, expected ({count}, dim)")
    return matrix


# A message that asks how something is done is a question for the knowledge base, even when it
# mentions tickets or reporting ("how do I report a phishing email?").
_HOW_TO = (
    r"^\W*(?:how|what|where|when|why|which|who|is|are|does|do|should|can\s+i|could\s+i)\b",
    r"\bhow\s+(?:do|can|should|would|to)\b",
)

DEFAULT_INTENTS: tuple[IntentSpec, ...] = (
    IntentSpec(
        name=CANCEL,
        # Whole-message only: "how do I stop Teams starting at login?" is a question.
        patterns=(
            r"^\W*(?:cancel|stop|abort|quit|never\s*mind|nvm|forget\s+(?:it|that))"
            r"(?:\s+(?:it|that|this|the\s+ticket))?(?:\s+please)?\W*$",
        ),
    ),
    IntentSpec(
        name=GREETING,
        patterns=(
            r"^\W*(?:hi|hello|hey|hiya|howdy|good\s+(?:morning|afternoon|evening))"
            r"(?:\s+there)?\W*$",
        ),
        examples=("hello", "hi there", "good morning"),
    ),
    IntentSpec(
        name=HELP,
        patterns=(
            r"^\W*(?:help|what\s+can\s+you\s+(?:do|help(?:\s+me)?\s+with)|how\s+can\s+you\s+help"
            r"(?:\s+me)?|what\s+do\s+you\s+do|what\s+are\s+you(?:\s+for)?)\W*$",
        ),
        examples=("what can you do", "what can you help me with", "what are you able to do"),
    ),
    IntentSpec(
        name=OPEN_TICKET,
        patterns=(
            r"\b(?:open|raise|create|log|file|submit)\s+(?:a\s+|an\s+)?(?:new\s+)?"
            r"(?:it\s+|support\s+|helpdesk\s+)?(?:ticket|incident)\b",
            r"\b(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:log|report|file)\s+"
            r"(?:it|this|that)\b",
            r"\bi\s+need\s+(?:the\s+)?(?:it(?:\s+team)?|helpdesk|help\s+desk)\s+to\s+"
            r"(?:fix|look|repair|sort|check|replace)\b",
        ),
        examples=(
            "please open a ticket for me",
            "my laptop is broken, can you log it",
            "I need IT to fix my computer",
            "raise a support ticket",
            "report this problem to IT for me",
            "can you get someone from IT to look at my printer",
        ),
        exclude=_HOW_TO,
    ),
    IntentSpec(
        name=GOODBYE,
        patterns=(
            r"^\W*(?:(?:ok(?:ay)?|great|perfect|cool|brilliant)\W+)?"
            r"(?:thanks|thank\s+you|thx|cheers|bye|goodbye|see\s+you)"
            r"(?:\s+(?:so|very)\s+much|\s+a\s+lot)?(?:\s+for\s+(?:your|the)\s+help)?"
            r"(?:\W+bye)?\W*$",
        ),
        examples=("thanks, bye", "thank you for your help", "thank you, that helps", "goodbye"),
    ),
)
"""The catalogue the runtime uses. Anything not matched is a ``question`` for retrieval."""
