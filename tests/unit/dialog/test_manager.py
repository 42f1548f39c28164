"""The dialog state machine, driven message by message as the runtime drives it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from support.dialog import bag_of_words_embed as embed
from switchyard.dialog.intents import DEFAULT_INTENTS, IntentClassifier, IntentMatch
from switchyard.dialog.manager import (
    HELP_TEXT,
    IDLE,
    TICKET_FAILED_TEXT,
    TICKET_NOT_CONFIGURED_TEXT,
    CallTool,
    DialogManager,
    DialogState,
    Flow,
    Mode,
    Reply,
    Retrieve,
    Step,
    StepCode,
    tool_reply,
)
from switchyard.dialog.slots import SlotSpec, free_text
from switchyard.dialog.tools import InMemoryTicketTool, ToolOutcome, ToolRegistry

CLASSIFIER = IntentClassifier(DEFAULT_INTENTS, embed)
MANAGER = DialogManager()


def say(state: DialogState, message: str, manager: DialogManager = MANAGER) -> Step:
    return manager.step(state, message, CLASSIFIER.classify(message))


def conversation(*messages: str) -> list[Step]:
    """Each step of a conversation starting idle, the state carried as the runtime carries it
    (through its JSON form, as stored in PostgreSQL)."""
    steps: list[Step] = []
    state = IDLE
    for message in messages:
        step = say(state, message)
        steps.append(step)
        state = DialogState.from_json(json.loads(json.dumps(step.state.to_json())))
    return steps


def reply(step: Step) -> str:
    assert isinstance(step.action, Reply), step
    return step.action.text


TICKET = {"category": "hardware", "summary": "The screen flickers constantly", "urgency": "high"}


# --- idle -------------------------------------------------------------------------------------


def test_idle_question_is_retrieved() -> None:
    step = say(IDLE, "how do I reset my password?")

    assert step == Step(IDLE, Retrieve(), StepCode.RETRIEVE, "question (default)")


@pytest.mark.parametrize("message", ["hello", "what can you do?", "thanks!"])
def test_small_talk_gets_a_fixed_reply_and_stays_idle(message: str) -> None:
    step = say(IDLE, message)

    assert step.state == IDLE
    assert step.code is StepCode.FIXED_REPLY
    assert reply(step)


def test_help_says_what_the_assistant_does() -> None:
    text = reply(say(IDLE, "help"))

    assert text == HELP_TEXT
    assert "open a ticket" in text
    assert "cancel" in text


def test_cancel_when_idle_has_nothing_to_cancel() -> None:
    step = say(IDLE, "cancel")

    assert step.state == IDLE
    assert step.code is StepCode.NOTHING_TO_CANCEL


# --- the ticket flow --------------------------------------------------------------------------


def test_full_ticket_flow_asks_each_slot_then_confirms_then_calls_the_tool() -> None:
    start, cat, summary, urgency, yes = conversation(
        "please open a ticket", "my laptop", "The screen flickers constantly", "urgent", "yes"
    )

    assert start.state.awaiting == "category"
    assert reply(start).startswith("I can open an IT ticket for you. What kind of problem")
    assert (cat.state.awaiting, cat.code) == ("summary", StepCode.ASK_SLOT)
    assert summary.state.awaiting == "urgency"
    assert urgency.state.mode is Mode.CONFIRMING
    assert urgency.code is StepCode.CONFIRM
    assert reply(urgency) == (
        "I'll open a ticket: hardware problem, high urgency, "
        '"The screen flickers constantly". Shall I go ahead? (yes/no)'
    )
    assert yes == Step(
        IDLE, CallTool("open_ticket", TICKET, IDLE), StepCode.CALL_TOOL, "open_ticket confirmed"
    )


def test_slots_stated_in_the_opening_message_are_not_asked_for() -> None:
    (step,) = conversation("my laptop screen is broken, can you log it?")

    assert step.state.slots == {"category": "hardware", "summary": "my laptop screen is broken"}
    assert step.state.awaiting == "urgency"
    assert reply(step) == "I can open an IT ticket for you. How urgent is it: low, normal or high?"


def test_opening_message_with_every_slot_goes_straight_to_confirmation() -> None:
    step, yes = conversation("my laptop screen is broken and it's urgent, can you log it", "yes")

    assert step.state.mode is Mode.CONFIRMING
    assert isinstance(yes.action, CallTool)
    assert yes.action.arguments == {
        "category": "hardware",
        "summary": "my laptop screen is broken and it's urgent",
        "urgency": "high",
    }


def test_cancel_mid_flow_returns_to_idle_without_a_tool_call() -> None:
    *_, cancelled = conversation("open a ticket", "hardware", "never mind")

    assert cancelled.state == IDLE
    assert cancelled.code is StepCode.CANCELLED
    assert "won't open a ticket" in reply(cancelled)


def test_cancel_while_confirming_returns_to_idle() -> None:
    *_, cancelled = conversation(
        "open a ticket", "laptop", "it makes a grinding noise", "low", "stop"
    )

    assert (cancelled.state, cancelled.code) == (IDLE, StepCode.CANCELLED)


def test_confirmation_no_declines() -> None:
    *_, declined = conversation("open a ticket", "laptop", "it makes a grinding noise", "low", "no")

    assert declined.state == IDLE
    assert declined.code is StepCode.DECLINED
    assert not isinstance(declined.action, CallTool)


def test_invalid_answer_is_refused_with_the_reason_then_abandoned_after_three() -> None:
    _, first, second, third = conversation("open a ticket", "banana", "kiwi", "mango")

    for step, attempts in ((first, 1), (second, 2)):
        assert step.code is StepCode.SLOT_INVALID
        assert (step.state.awaiting, step.state.attempts) == ("category", attempts)
        assert "Please choose one of: hardware" in reply(step)
        assert "cancel" in reply(step)
    assert third.state == IDLE
    assert third.code is StepCode.ABANDONED
    assert "nothing was filed" in reply(third)


def test_attempts_start_again_for_each_slot() -> None:
    *_, wrong, right, short = conversation("open a ticket", "banana", "printer", "meh")

    assert wrong.state.attempts == 1
    assert (right.state.awaiting, right.state.attempts) == ("summary", 0)
    assert (short.state.awaiting, short.state.attempts) == ("summary", 1)
    assert "at least 10 characters" in reply(short)


def test_unclear_confirmation_asks_again_then_abandons() -> None:
    steps = conversation("open a ticket", "laptop", "it makes a grinding noise", "low")
    state = steps[-1].state

    first = say(state, "maybe")
    assert first.code is StepCode.CONFIRM_UNCLEAR
    assert reply(first).startswith("Please answer yes or no. I'll open a ticket:")
    second = say(first.state, "perhaps")
    third = say(second.state, "hmm")
    assert (third.state, third.code) == (IDLE, StepCode.ABANDONED)


def test_a_question_mid_flow_is_taken_as_the_answer() -> None:
    # The documented choice: only a rule-matched cancel interrupts a flow.
    *_, step = conversation("open a ticket", "software", "how do I reset my password?")

    assert step.state.slots["summary"] == "how do I reset my password?"
    assert step.state.awaiting == "urgency"


def test_cancel_by_similarity_alone_does_not_interrupt() -> None:
    state = conversation("open a ticket", "printer")[-1].state
    intent = IntentMatch("cancel", 0.9, "similarity")

    step = MANAGER.step(state, "the printer won't stop jamming", intent)

    assert step.state.slots["summary"] == "the printer won't stop jamming"


# --- stored state from elsewhere --------------------------------------------------------------


def test_state_of_an_unknown_flow_is_treated_as_idle() -> None:
    stale = DialogState(Mode.COLLECTING, "order_pizza", {}, awaiting="topping")

    assert say(stale, "how do I reset my password?").action == Retrieve()


def test_state_awaiting_an_unknown_slot_is_treated_as_idle() -> None:
    stale = DialogState(Mode.COLLECTING, "open_ticket", {}, awaiting="colour")

    step = say(stale, "hello")

    assert (step.state, step.code) == (IDLE, StepCode.FIXED_REPLY)


@pytest.mark.parametrize("message", ["yes", "maybe"])
def test_confirming_with_a_slot_missing_asks_for_it_instead_of_calling(message: str) -> None:
    partial = DialogState(Mode.CONFIRMING, "open_ticket", {"category": "access"})

    step = say(partial, message)

    assert step.state.awaiting == "summary"
    assert not isinstance(step.action, CallTool)


def test_custom_flow_and_attempt_limit() -> None:
    flow = Flow(
        intent="feedback",
        tool="send_feedback",
        slots=(SlotSpec("text", "What would you like to tell us?", free_text(3, 100)),),
        confirm=lambda slots: f"Send {slots['text']!r}? (yes/no)",
        intro="",
        declined="Not sent.",
        abandoned="Let's leave it.",
    )
    manager = DialogManager([flow], replies={}, max_attempts=1)
    start = manager.step(IDLE, "feedback", IntentMatch("feedback", 1.0, "rule"))

    assert reply(start) == "What would you like to tell us?"
    assert reply(say(start.state, "no", manager)) == "Let's leave it."
    assert say(IDLE, "hello", manager).action == Retrieve()  # no fixed replies configured


def test_flow_slot_names_must_be_distinct() -> None:
    spec = SlotSpec("x", "?", free_text(1, 2))
    with pytest.raises(ValueError, match="distinct"):
        Flow("f", "t", (spec, spec), lambda s: "", "", "", "")


# --- state as JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        IDLE,
        DialogState(Mode.COLLECTING, "open_ticket", {"category": "network"}, "summary", 2),
        DialogState(Mode.CONFIRMING, "open_ticket", TICKET),
    ],
)
def test_state_round_trips_through_json(state: DialogState) -> None:
    assert DialogState.from_json(json.loads(json.dumps(state.to_json()))) == state


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "expected a JSON object"),
        ("idle", "expected a JSON object"),
        (None, "expected a JSON object"),
        ({"v": 1, "mode": "flying"}, "mode"),
        ({"v": 1, "mode": "idle", "slots": {"a": 1}}, "slots"),
        ({"v": 1, "mode": "idle", "slots": ["a"]}, "slots"),
        ({"v": 1, "mode": "idle", "attempts": "2"}, "attempts"),
        ({"v": 1, "mode": "idle", "attempts": True}, "attempts"),
        ({"v": 1, "mode": "idle", "attempts": 1}, "idle"),
        ({"v": 1, "mode": "collecting", "intent": "open_ticket"}, "collecting"),
        ({"v": 1, "mode": "confirming", "intent": 7}, "intent"),
        ({"v": 1, "mode": "collecting", "intent": "x", "awaiting": "a", "attempts": -1}, "neg"),
    ],
)
def test_malformed_state_is_refused_naming_the_field(data: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        DialogState.from_json(data)


def test_state_error_never_echoes_slot_values() -> None:
    with pytest.raises(ValueError, match="slots") as info:
        DialogState.from_json({"v": 1, "mode": "idle", "slots": {"summary": 12345}})

    assert "12345" not in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"mode": "collecting", "awaiting": "category"},
        {"v": 2, "mode": "teleporting"},
        {"v": True, "mode": "idle"},
        {"v": "1", "mode": "idle"},
    ],
)
def test_unknown_or_older_shapes_start_idle(data: object) -> None:
    assert DialogState.from_json(data) == IDLE


def test_state_slots_cannot_be_changed_through_the_callers_dict() -> None:
    slots = {"category": "network"}
    state = DialogState(Mode.CONFIRMING, "open_ticket", slots)

    slots["category"] = "hardware"

    assert state.slots == {"category": "network"}


# --- the tool's outcome -----------------------------------------------------------------------


def test_tool_reply_names_the_ticket() -> None:
    outcome = ToolOutcome(ok=True, reference="IT-1234", detail="ticket opened", error_code=None)

    assert tool_reply(outcome).startswith("I opened ticket IT-1234.")


@pytest.mark.parametrize("code", ["timeout", "unreachable", "http_500", "bad_response", "internal"])
def test_tool_failure_is_a_polite_answer_without_the_detail(code: str) -> None:
    text = tool_reply(ToolOutcome.failed(code, "secret-host.internal:8443 said no"))

    assert text == TICKET_FAILED_TEXT
    assert "secret-host" not in text


def test_missing_tool_says_so() -> None:
    assert tool_reply(ToolOutcome.failed("not_configured", "")) == TICKET_NOT_CONFIGURED_TEXT


def test_outcome_ok_and_error_code_agree() -> None:
    with pytest.raises(ValueError, match="error_code"):
        ToolOutcome(ok=True, reference="IT-1", detail="", error_code="timeout")


# --- the runtime's loop over manager and registry ---------------------------------------------


def run(registry: ToolRegistry, *messages: str) -> list[str]:
    """What the runtime does: step, carry out the action, store the state."""
    answers: list[str] = []
    state = IDLE
    for message in messages:
        step = say(state, message)
        action = step.action
        if isinstance(action, CallTool):
            outcome = asyncio.run(registry.call(action.tool, action.arguments))
            answers.append(tool_reply(outcome, action.tool))
            state = action.then_state
        else:
            answers.append(reply(step) if isinstance(action, Reply) else "<retrieve>")
            state = step.state
    return answers


TICKET_TALK = ("open a ticket", "laptop", "The screen flickers constantly", "asap", "yes")


def test_confirmed_ticket_is_filed_once_with_the_slots() -> None:
    tool = InMemoryTicketTool()

    answers = run(ToolRegistry([tool]), *TICKET_TALK, "yes")

    assert tool.calls == [TICKET]
    assert answers[4].startswith("I opened ticket IT-1.")
    assert answers[5] == "<retrieve>"  # a second "yes" is just a message, not a second ticket


def test_failing_tool_gives_the_polite_answer() -> None:
    answers = run(ToolRegistry([InMemoryTicketTool(fail_with="timeout")]), *TICKET_TALK)

    assert answers[-1] == TICKET_FAILED_TEXT


def test_unconfigured_tool_gives_the_polite_answer() -> None:
    assert run(ToolRegistry([]), *TICKET_TALK)[-1] == TICKET_NOT_CONFIGURED_TEXT


class BrokenTool:
    name = "open_ticket"

    async def call(self, arguments: Mapping[str, str]) -> ToolOutcome:
        raise RuntimeError("bug")


def test_a_tool_that_raises_still_gives_the_polite_answer(caplog: pytest.LogCaptureFixture) -> None:
    answers = run(ToolRegistry([BrokenTool()]), *TICKET_TALK)

    assert answers[-1] == TICKET_FAILED_TEXT
    (record,) = [r for r in caplog.records if r.getMessage() == "tool.failed"]
    assert record.fields["error_code"] == "internal"  # type: ignore[attr-defined]
    assert record.exc_info is not None
