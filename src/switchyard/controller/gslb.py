"""Point the GSLB record at a region on every DNS provider, and ask what each one answers.

Invariants:

- ``route_to`` is idempotent: a provider already holding ``desired`` is read and left alone
  (``changed`` False). Otherwise it applies ``plan(current, desired)``; a ``ConflictError``
  (someone wrote in between) earns one re-read and one more try, never more.
- Every provider is tried, even after one fails, so one dead provider never keeps the record
  on the others from moving. Then the first failure is raised with notes naming the other
  failures and what succeeded; calling again converges (it is idempotent).
- Only the record set of ``desired``'s type at ``name`` is compared and written; other types
  at the name are not this function's business.
- Time comes from the injected ``clock`` (seconds, monotonic), used only to measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchyard.domain.dns import (
    Answer,
    RecordSet,
    Verification,
    check_name,
    judge_answers,
    plan,
)
from switchyard.errors import ConflictError, SwitchyardError
from switchyard.ports.dns import DnsProvider


@dataclass(frozen=True, slots=True)
class ProviderUpdate:
    """What ``route_to`` did on one provider, how long it took, and why, in one sentence."""

    provider: str
    changed: bool
    seconds: float
    reason: str = ""


def route_to(
    providers: Sequence[DnsProvider],
    name: str,
    desired: RecordSet,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[ProviderUpdate, ...]:
    """Make every provider hold ``desired`` at ``name``; one ``ProviderUpdate`` per provider.

    ``ValueError`` if ``desired`` is not named ``name``. Provider errors propagate by
    category after every provider was tried (see the module docstring).
    """
    if check_name(name) != desired.name:
        raise ValueError(f"desired record {desired.name} is not {name}")
    updates: list[ProviderUpdate] = []
    failures: list[tuple[str, SwitchyardError]] = []
    for provider in providers:
        started = clock()
        try:
            changed, reason = _converge(provider, desired)
        except SwitchyardError as exc:
            failures.append((provider.name, exc))
            continue
        updates.append(ProviderUpdate(provider.name, changed, clock() - started, reason))
    if failures:
        first = failures[0][1]
        for provider_name, other in failures[1:]:
            first.add_note(f"{provider_name} also failed: {type(other).__name__}: {other}")
        for update in updates:
            first.add_note(update.reason)
        raise first
    return tuple(updates)


def _converge(provider: DnsProvider, desired: RecordSet) -> tuple[bool, str]:
    """Apply the plan on one provider; (changed, reason)."""
    for attempt in (1, 2):
        current = [r for r in provider.records(desired.name) if r.key == desired.key]
        changes = plan(current, [desired])
        if not changes:
            late = " (another writer made the change)" if attempt == 2 else ""
            return False, f"{provider.name}: {desired.name} already {desired.describe()}{late}"
        try:
            provider.apply(changes)
        except ConflictError:
            if attempt == 2:
                raise
            continue
        retried = " after one conflict" if attempt == 2 else ""
        return True, f"{provider.name}: {changes[0].describe()}{retried}"
    raise AssertionError("unreachable: the second attempt returns or raises")


def ask(providers: Sequence[DnsProvider], name: str) -> dict[str, Answer]:
    """What each provider's authoritative servers answer for ``name`` A, by provider name.

    ``ValueError`` if two providers share a name (their answers would be indistinguishable).
    Provider errors propagate by category.
    """
    names = [provider.name for provider in providers]
    if len(set(names)) != len(names):
        raise ValueError(f"provider names must be unique to tell answers apart: {names}")
    return {provider.name: provider.answer(name) for provider in providers}


def answers(providers: Sequence[DnsProvider], name: str) -> dict[str, tuple[str, ...]]:
    """Every address each provider's servers answer for ``name`` A, by provider name."""
    return {provider: answer.addresses for provider, answer in ask(providers, name).items()}


def verify_answers(providers: Sequence[DnsProvider], name: str, address: str) -> Verification:
    """Whether every provider's authoritative servers answer exactly ``address`` for ``name``
    with no change still propagating; the detail says, per provider, which servers were asked
    and what each answered (see ``switchyard.domain.dns.judge_answers``)."""
    return judge_answers(ask(providers, name), address)
