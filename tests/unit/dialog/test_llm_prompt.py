"""Prompt building and citation parsing (dialog.prompt), and the LLM settings checks."""

from __future__ import annotations

import pytest

from switchyard.dialog.llm import LlmSettings
from switchyard.dialog.model import AnswerKind, Chunk, Citation, Hit
from switchyard.dialog.prompt import (
    DONT_KNOW,
    Completion,
    build_messages,
    generated_answer,
    parse_citations,
    prompt_sources,
)
from switchyard.domain.secrets import Secret


def _hit(n: int, text: str | None = None, score: float | None = None) -> Hit:
    text = text if text is not None else f"Passage number {n}."
    chunk = Chunk(
        chunk_id=f"c{n}",
        doc_id=f"it/doc{n}.md",
        title=f"Doc {n}",
        section="",
        start=100 * n,
        end=100 * n + len(text),
        text=text,
    )
    return Hit(
        chunk=chunk, score=score if score is not None else 1.0 / n, similarity=0.5, bm25=None
    )


def _completion(text: str) -> Completion:
    return Completion(text, "m", None, None, queue_ms=0.0, llm_ms=1.0)


# --- build_messages ----------------------------------------------------------------------------


def test_messages_are_a_system_instruction_then_numbered_sources_and_the_question() -> None:
    system, user = build_messages("  How do I reset MFA?  ", [_hit(1), _hit(2)])

    assert system.role == "system"
    assert "[1]" in system.content
    assert DONT_KNOW in system.content
    assert user.role == "user"
    assert user.content.index("[1] (document: it/doc1.md") < user.content.index("[2] (document:")
    assert "Passage number 1." in user.content
    assert "Passage number 2." in user.content
    assert user.content.endswith("Question: How do I reset MFA?")


def test_sources_are_numbered_in_the_order_of_the_hits() -> None:
    _, user = build_messages("q", [_hit(3), _hit(1)])
    assert user.content.index("[1] (document: it/doc3.md") < user.content.index(
        "[2] (document: it/doc1.md"
    )


def test_no_hits_gives_a_prompt_without_sources() -> None:
    _, user = build_messages("q", [])
    assert "(no sources)" in user.content
    assert "[1]" not in user.content


def test_source_text_is_bounded_and_later_hits_are_left_out() -> None:
    hits = [_hit(n, text=f"{n}" * 400) for n in range(1, 6)]  # 2,000 chars in all

    shown = prompt_sources(hits, max_source_chars=1000)
    _, user = build_messages("q", hits, max_source_chars=1000)

    assert sum(len(text) for _, text in shown) <= 1000
    assert [hit.chunk.chunk_id for hit, _ in shown] == ["c1", "c2", "c3"]
    assert shown[2][1].endswith("…")  # the third is cut to fit
    assert "[3] (document:" in user.content
    assert "[4]" not in user.content
    assert "5" * 10 not in user.content


def test_a_source_that_would_be_cut_too_short_is_left_out() -> None:
    hits = [_hit(1, text="a" * 900), _hit(2, text="b" * 900)]
    shown = prompt_sources(hits, max_source_chars=1000)  # 100 left for the second: too few
    assert [hit.chunk.chunk_id for hit, _ in shown] == ["c1"]


def test_the_first_source_is_always_shown_even_when_longer_than_the_bound() -> None:
    shown = prompt_sources([_hit(1, text="x" * 5000)], max_source_chars=300)
    assert len(shown) == 1
    assert len(shown[0][1]) <= 300


def test_default_bound_holds_for_many_long_hits() -> None:
    hits = [_hit(n, text="word " * 400) for n in range(1, 20)]
    assert sum(len(text) for _, text in prompt_sources(hits)) <= 6000


# --- parse_citations ---------------------------------------------------------------------------


def test_markers_map_to_the_hits_chunks() -> None:
    hit = _hit(2, score=0.7)
    (citation,) = parse_citations("Reset it in the portal [2].", [_hit(1), hit])

    chunk = hit.chunk
    assert citation == Citation(
        doc_id=chunk.doc_id,
        chunk_id=chunk.chunk_id,
        score=0.7,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
    )


def test_citations_are_deduplicated_in_order_of_first_mention() -> None:
    hits = [_hit(1), _hit(2), _hit(3)]
    citations = parse_citations("A [3]. B [1][3]. C [3, 2]. D [1].", hits)
    assert [c.chunk_id for c in citations] == ["c3", "c1", "c2"]


def test_out_of_range_and_malformed_markers_are_ignored() -> None:
    hits = [_hit(1), _hit(2)]
    text = "Zero [0], three [3], huge [99999999999999999999], words [a], empty [], ok [2]."
    assert [c.chunk_id for c in parse_citations(text, hits)] == ["c2"]


def test_markers_for_sources_left_out_of_the_prompt_are_ignored() -> None:
    hits = [_hit(n, text="z" * 900) for n in range(1, 4)]
    # With a 1,000 char bound only [1] was shown; the model cannot have read [2] or [3].
    citations = parse_citations("See [1] and [3].", hits, max_source_chars=1000)
    assert [c.chunk_id for c in citations] == ["c1"]


def test_the_same_chunk_in_two_hits_is_cited_once() -> None:
    hit = _hit(1)
    assert len(parse_citations("[1] [2]", [hit, hit])) == 1


def test_no_markers_no_citations() -> None:
    assert parse_citations("I don't know.", [_hit(1)]) == ()


# --- generated_answer --------------------------------------------------------------------------


def test_generated_answer_keeps_text_and_cites_valid_markers() -> None:
    answer = generated_answer(_completion(" Use the VPN portal [1]. \n"), [_hit(1)], 0.6)
    assert answer.kind is AnswerKind.GENERATED
    assert answer.text == "Use the VPN portal [1]."
    assert answer.confidence == 0.6
    assert [c.chunk_id for c in answer.citations] == ["c1"]


def test_generated_answer_without_valid_citations_invents_none() -> None:
    answer = generated_answer(_completion("Probably yes [4]."), [_hit(1), _hit(2)], 0.4)
    assert answer.kind is AnswerKind.GENERATED
    assert answer.citations == ()


# --- settings ----------------------------------------------------------------------------------


def test_settings_defaults_follow_the_seed_architecture() -> None:
    settings = LlmSettings(base_url="http://127.0.0.1:9999/v1/", model="m")
    assert settings.max_concurrency == 4
    assert settings.queue_timeout_seconds == 30.0
    assert settings.busy_retry_after_seconds == 30
    assert settings.completions_url == "http://127.0.0.1:9999/v1/chat/completions"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "127.0.0.1:9999/v1"),
        ("model", ""),
        ("max_concurrency", 0),
        ("queue_timeout_seconds", 0.0),
        ("request_timeout_seconds", -1.0),
        ("max_tokens", 0),
        ("temperature", 3.0),
    ],
)
def test_settings_refuse_invalid_values_naming_the_field(field: str, value: object) -> None:
    values: dict[str, object] = {"base_url": "http://x/v1", "model": "m", field: value}
    with pytest.raises(ValueError, match=field):
        LlmSettings(**values)  # type: ignore[arg-type]


def test_settings_repr_masks_the_key() -> None:
    settings = LlmSettings(base_url="http://x/v1", model="m", api_key=Secret("sk-abcdef123"))
    assert "sk-abcdef123" not in repr(settings)
