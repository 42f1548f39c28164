"""The dialog state machine: one pure ``step`` per user message.

``DialogManager.step(state, message, intent) -> Step`` decides; the runtime carries out the
step's action (retrieve and answer, send a reply, or call a tool and send ``tool_reply``) and
stores ``step.state`` for the session. Nothing here does I/O, reads a clock or logs.

Modes (``DialogState.mode``):

- ``idle``: a flow's intent (``open_ticket``) starts that flow, pre-filling any slot the message
  states plainly; greeting, help and goodbye get a fixed reply; ``cancel`` has nothing to
  cancel; anything else is a question for retrieval.
- ``collecting``: the message answers the slot being asked for. A valid answer fills it and the
  next missing slot is asked for; an invalid one is refused with the parser's reason. After
  ``max_attempts`` invalid answers to one slot the flow is abandoned, back to idle.
- ``confirming``: yes calls the flow's tool (the state goes back to idle whatever the tool's
  outcome, so a repeated "yes" cannot file twice); no abandons; anything else asks again,
  counting attempts as for a slot.

Choice made for predictability: while a flow is in progress, every message is the answer to
the pending question, except ``cancel`` decided by a *rule* (the exact words "cancel", "stop",
"never mind", ...). A message that looks like a new question is therefore parsed as the
answer; if it does not parse, the re-prompt says how to cancel. Similarity alone never
interrupts a flow, because a free-text answer ("the printer won't stop jamming") can resemble
anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from switchyard.dialog.intents import CANCEL, GOODBYE, GREETING, HELP, OPEN_TICKET, IntentMatch
from switchyard.dialog.slots import SlotError, SlotSpec, ticket_slots, yes_no
from switchyard.dialog.tools import OPEN_TICKET as TICKET_TOOL
from switchyard.dialog.tools import ToolOutcome

STATE_VERSION = 1
"""``to_json`` writes it as ``"v"``; ``from_json`` treats any other version as unknown."""


class Mode(StrEnum):
    IDLE = "idle"
    COLLECTING = "collecting"
    CONFIRMING = "confirming"


@dataclass(frozen=True, slots=True)
class DialogState:
    """A session's dialog state, stored as JSON between messages.

    Invariants (checked at construction, ValueError otherwise):
    idle has no intent, slots, awaited slot or attempts; collecting has an intent and awaits a
    slot not yet filled; confirming has an intent and awaits nothing; attempts >= 0 counts the
    invalid answers to the current question.
    """

    mode: Mode = Mode.IDLE
    intent: str | None = None
    slots: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    awaiting: str | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        # A read-only copy, so a caller's dict cannot change a stored state behind its back.
        object.__setattr__(self, "slots", MappingProxyType(dict(self.slots)))
        object.__setattr__(self, "mode", Mode(self.mode))
        problem = _state_problem(self)
        if problem is not None:
            raise ValueError(f"dialog state: {problem}")

    def to_json(self) -> dict[str, object]:
        return {
            "v": STATE_VERSION,
            "mode": self.mode.value,
            "intent": self.intent,
            "slots": dict(self.slots),
            "awaiting": self.awaiting,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, data: object) -> DialogState:
        """Parse what ``to_json`` wrote.

        An object without the current ``"v"`` (an empty default, an older or newer shape) is
        unknown and gives idle: the user at worst repeats one answer. Anything else that is not
        a well-formed current state raises ValueError naming the field (never its value, which
        may be the user's words).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"dialog state: expected a JSON object, got {type(data).__name__}")
        version = data.get("v")
        if type(version) is not int or version != STATE_VERSION:
            return cls()
        mode = data.get("mode")
        if mode not in tuple(Mode):
            raise ValueError("dialog state: mode: must be idle, collecting or confirming")
        slots = data.get("slots", {})
        if not isinstance(slots, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in slots.items()
        ):
            raise ValueError("dialog state: slots: must map names to strings")
        attempts = data.get("attempts", 0)
        if type(attempts) is not int:
            raise ValueError("dialog state: attempts: must be an integer")
        return cls(
            mode=Mode(mode),
            intent=_optional_str(data, "intent"),
            slots=slots,
            awaiting=_optional_str(data, "awaiting"),
            attempts=attempts,
        )


def _state_problem(state: DialogState) -> str | None:
    if state.attempts < 0:
        return "attempts: must not be negative"
    if state.mode is Mode.IDLE:
        if state.intent is not None or state.slots or state.awaiting is not None or state.attempts:
            return "idle: must have no intent, slots, awaited slot or attempts"
        return None
    if not state.intent:
        return f"{state.mode.value}: needs an intent"
    if state.mode is Mode.COLLECTING:
        if not state.awaiting or state.awaiting in state.slots:
            return "collecting: must await a slot that is not filled"
    elif state.awaiting is not None:
        return "confirming: must not await a slot"
    return None


def _optional_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"dialog state: {key}: must be a string or null")


IDLE = DialogState()
"""The state of a session with nothing in progress (and of a new session)."""


@dataclass(frozen=True, slots=True)
class Retrieve:
    """Answer the message from the knowledge base (the runtime's RAG path)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``text`` as the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class CallTool:
    """Call ``tool`` with ``arguments``, answer with ``tool_reply(outcome, tool)``, then store
    ``then_state`` (idle: the flow is over whatever the outcome)."""

    tool: str
    arguments: Mapping[str, str]
    then_state: DialogState


Action = Retrieve | Reply | CallTool


class StepCode(StrEnum):
    """Why a step did what it did; stable values for logs, metrics labels and tests."""

    RETRIEVE = "retrieve"
    FIXED_REPLY = "fixed_reply"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    ASK_SLOT = "ask_slot"
    SLOT_INVALID = "slot_invalid"
    CONFIRM = "confirm"
    CONFIRM_UNCLEAR = "confirm_unclear"
    CALL_TOOL = "call_tool"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Step:
    """The new state to store, the action to carry out, and why (code and sentence)."""

    state: DialogState
    action: Action
    code: StepCode
    reason: str


@dataclass(frozen=True, slots=True)
class Flow:
    """A slot-filling flow started by ``intent`` and ending in a call to ``tool``.

    ``confirm`` renders the question asked once every slot is filled; ``intro`` is said when
    the flow starts; ``declined`` on no or cancel; ``abandoned`` after too many invalid answers.
    """

    intent: str
    tool: str
    slots: tuple[SlotSpec, ...]
    confirm: Callable[[Mapping[str, str]], str]
    intro: str
    declined: str
    abandoned: str

    def __post_init__(self) -> None:
        names = [s.name for s in self.slots]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"flow {self.intent}: slot names must be distinct and non-empty")

    def slot(self, name: str | None) -> SlotSpec | None:
        return next((s for s in self.slots if s.name == name), None)

    def missing(self, filled: Mapping[str, str]) -> SlotSpec | None:
        """The first slot not yet filled, in asking order."""
        return next((s for s in self.slots if s.name not in filled), None)


GREETING_TEXT = (
    "Hello! Ask me about IT or company policies, or say 'open a ticket' if something needs fixing."
)
HELP_TEXT = (
    "I can answer questions from the IT and policy documents, for example how to set up the "
    "VPN or reset your password, and I can open an IT ticket for you: just say 'open a ticket'. "
    "Say 'cancel' at any time to stop what we're doing."
)
GOODBYE_TEXT = "You're welcome. If anything else comes up, just ask."
NOTHING_TO_CANCEL_TEXT = "There's nothing in progress to cancel. What can I help you with?"
CANCEL_HINT = "(Say 'cancel' to stop.)"

DEFAULT_REPLIES: Mapping[str, str] = MappingProxyType(
    {GREETING: GREETING_TEXT, HELP: HELP_TEXT, GOODBYE: GOODBYE_TEXT}
)

TICKET_FAILED_TEXT = (
    "I couldn't reach the IT ticket system just now, so nothing was filed. "
    "Please try again in a few minutes or call the helpdesk."
)
TICKET_NOT_CONFIGURED_TEXT = (
    "I can't open tickets from here, so nothing was filed. Please contact the helpdesk directly."
)


def _confirm_ticket(slots: Mapping[str, str]) -> str:
    return (
        f"I'll open a ticket: {slots['category']} problem, {slots['urgency']} urgency, "
        f'"{slots["summary"]}". Shall I go ahead? (yes/no)'
    )


def open_ticket_flow() -> Flow:
    """The IT-ticket flow: category, summary, urgency, confirmation, then ``open_ticket``."""
    return Flow(
        intent=OPEN_TICKET,
        tool=TICKET_TOOL,
        slots=ticket_slots(),
        confirm=_confirm_ticket,
        intro="I can open an IT ticket for you.",
        declined="Okay, I won't open a ticket. Is there anything else I can help with?",
        abandoned=(
            "Sorry, I still couldn't make sense of that, so I've stopped and nothing was filed. "
            "Say 'open a ticket' whenever you'd like to try again."
        ),
    )


def tool_reply(outcome: ToolOutcome, tool: str = TICKET_TOOL) -> str:
    """What the user is told after ``tool`` ran: never the outcome's ``detail``, which is for
    operators."""
    if tool == TICKET_TOOL:
        if outcome.ok:
            ref = outcome.reference
            if ref is None:
                return "I opened the ticket. The IT team will be in touch."
            return (
                f"I opened ticket {ref}. The IT team will be in touch; "
                f"quote {ref} if you contact the helpdesk about it."
            )
        if outcome.error_code == "not_configured":
            return TICKET_NOT_CONFIGURED_TEXT
        return TICKET_FAILED_TEXT
    if outcome.ok:
        return "Done." if outcome.reference is None else f"Done (reference {outcome.reference})."
    return "I couldn't do that just now, so nothing was changed. Please try again in a few minutes."


class DialogManager:
    """Decides each step of a session's dialog. Stateless between calls: the state is an
    argument and part of the result, so one manager serves every session.

    Invariant: ``step`` never raises for any message or stored state it can be given; a state
    naming a flow or slot this manager does not know (an older deployment's) is treated as idle.
    """

    def __init__(
        self,
        flows: Sequence[Flow] | None = None,
        *,
        replies: Mapping[str, str] = DEFAULT_REPLIES,
        max_attempts: int = 3,
    ) -> None:
        flows = (open_ticket_flow(),) if flows is None else tuple(flows)
        self._flows = {f.intent: f for f in flows}
        if len(self._flows) != len(flows):
            raise ValueError("two flows start on the same intent")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._replies = dict(replies)
        self._max_attempts = max_attempts
        self._yes_no = yes_no()

    def step(self, state: DialogState, message: str, intent: IntentMatch) -> Step:
        flow = self._flows.get(state.intent or "")
        if state.mode is Mode.IDLE or flow is None:
            return self._idle(message, intent)
        if intent.name == CANCEL and intent.method == "rule":
            return Step(IDLE, Reply(flow.declined), StepCode.CANCELLED, f"{flow.intent} cancelled")
        if state.mode is Mode.COLLECTING:
            return self._collect(flow, state, message, intent)
        return self._confirm(flow, state, message)

    def _idle(self, message: str, intent: IntentMatch) -> Step:
        flow = self._flows.get(intent.name)
        if flow is not None:
            filled = {}
            for spec in flow.slots:
                found = spec.extract(message) if spec.extract is not None else None
                if found is not None:
                    filled[spec.name] = found.value
            return self._advance(flow, filled, preface=flow.intro)
        if intent.name == CANCEL:
            return Step(IDLE, Reply(NOTHING_TO_CANCEL_TEXT), StepCode.NOTHING_TO_CANCEL, "idle")
        text = self._replies.get(intent.name)
        if text is not None:
            return Step(IDLE, Reply(text), StepCode.FIXED_REPLY, f"fixed reply to {intent.name}")
        return Step(IDLE, Retrieve(), StepCode.RETRIEVE, f"{intent.name} ({intent.method})")

    def _collect(self, flow: Flow, state: DialogState, message: str, intent: IntentMatch) -> Step:
        spec = flow.slot(state.awaiting)
        if spec is None:
            return self._idle(message, intent)
        parsed = spec.parse(message)
        if isinstance(parsed, SlotError):
            return self._retry(flow, state, f"{parsed.reason} {CANCEL_HINT}", spec.name)
        return self._advance(flow, {**state.slots, spec.name: parsed.value})

    def _confirm(self, flow: Flow, state: DialogState, message: str) -> Step:
        if flow.missing(state.slots) is not None:
            # Only a hand-edited or older stored state gets here; ask rather than call short.
            return self._advance(flow, state.slots)
        answer = self._yes_no(message)
        if isinstance(answer, SlotError):
            text = f"Please answer yes or no. {flow.confirm(state.slots)}"
            return self._retry(flow, state, text, "confirmation")
        if answer.value == "no":
            return Step(IDLE, Reply(flow.declined), StepCode.DECLINED, f"{flow.intent} declined")
        call = CallTool(flow.tool, MappingProxyType(dict(state.slots)), IDLE)
        return Step(IDLE, call, StepCode.CALL_TOOL, f"{flow.intent} confirmed")

    def _advance(self, flow: Flow, filled: Mapping[str, str], preface: str = "") -> Step:
        """Ask for the next missing slot, or for confirmation once all are filled."""
        lead = f"{preface} " if preface else ""
        nxt = flow.missing(filled)
        if nxt is None:
            state = DialogState(Mode.CONFIRMING, flow.intent, filled)
            return Step(state, Reply(lead + flow.confirm(filled)), StepCode.CONFIRM, "all filled")
        state = DialogState(Mode.COLLECTING, flow.intent, filled, awaiting=nxt.name)
        return Step(state, Reply(lead + nxt.prompt), StepCode.ASK_SLOT, f"asking for {nxt.name}")

    def _retry(self, flow: Flow, state: DialogState, text: str, what: str) -> Step:
        attempts = state.attempts + 1
        if attempts >= self._max_attempts:
            reason = f"{what}: {attempts} invalid answers"
            return Step(IDLE, Reply(flow.abandoned), StepCode.ABANDONED, reason)
        code = StepCode.SLOT_INVALID if state.mode is Mode.COLLECTING else StepCode.CONFIRM_UNCLEAR
        reason = f"{what}: invalid answer {attempts} of {self._max_attempts}"
        return Step(replace(state, attempts=attempts), Reply(text), code, reason)
