"""One batch of deliveries → parsed events → pure handlers → one CRM apply → a disposition each.

Events of the same account in one batch are handled in waves (one event per account per wave),
so each event sees the plan the previous one left, and a failure of one account's event holds
back only that account's later events: in the batch, and in later batches while it waits in a
retry queue (``worker.holds``). A held-back event follows it without spending an attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.actions import EventChange
from handlers.errors import PermanentError
from handlers.events import TIMER, Event, parse_event, peek_ids
from handlers.outcome import Outcome, Signal
from handlers.plan import Plan, Suppression
from handlers.rules.ruleset import RuleSet
from handlers.timer import not_due, watched, with_observed
from worker.crm.port import Crm, Outgoing
from worker.holds import RetryHolds
from worker.policy import Ack, Disposition, Park, Pause, Retry, RetryPolicy

Handle = Callable[[Event, Plan | None, RuleSet, datetime], Outcome]


@dataclass(frozen=True)
class Message:
    """One delivery as the processor sees it; ``attempts`` counts broker-level retries so far."""

    tag: int
    routing_key: str
    body: bytes
    attempts: int = 0


@dataclass(frozen=True)
class Result:
    """What to do with one message: the disposition, and events to publish before acking."""

    disposition: Disposition
    publishes: tuple[Outgoing, ...] = ()
    log: dict[str, Any] = field(default_factory=dict)
    suppressed: tuple[Suppression, ...] = ()
    signals: tuple[Signal, ...] = ()


def wait_again(event: Event, body: bytes, due: datetime) -> Outgoing:
    """A timer that arrived before its time, to publish into the delay tiers once more."""
    return Outgoing(event.id, event.type, json.loads(body), due.isoformat())


@dataclass
class _Batch:
    """What a batch learns as its waves run: plans and applied events so far, the outbox of those
    applied before, the accounts whose later events wait, and the results."""

    plans: dict[str, Plan]
    seen: set[str]
    outbox: Mapping[str, tuple[Outgoing, ...]]
    results: dict[int, Result]
    failed_accounts: dict[str, Disposition] = field(default_factory=dict)


class Processor:
    """Turns a batch of messages into results. Never raises: every failure becomes a disposition."""

    def __init__(
        self,
        crm: Crm,
        rules: Callable[[], RuleSet],
        handle: Handle,
        clock: Callable[[], datetime],
        policy: RetryPolicy,
        holds: RetryHolds | None = None,
    ) -> None:
        self._crm = crm
        self._rules = rules
        self._handle = handle
        self._clock = clock
        self._policy = policy
        self._holds = holds or RetryHolds()

    def process(self, messages: Sequence[Message]) -> list[Result]:
        results: dict[int, Result] = {}
        events: list[tuple[Message, Event]] = []
        now = self._clock()
        for message in messages:
            try:
                event = parse_event(message.body)
            except PermanentError as exc:
                results[message.tag] = self._result(message, exc, peek_ids(message.body))  # parked
                continue
            due = not_due(event, now)
            if due is not None:  # a timer on its way: back to the delay tiers, not handled yet
                results[message.tag] = Result(Ack(), (wait_again(event, message.body, due),),
                                              _ids(event) | {"timer_waits": due.isoformat()})
            else:
                events.append((message, event))
        if events:
            self._process_events(events, results)
        return [results[m.tag] for m in messages]

    def fail_all(self, messages: Sequence[Message], error: BaseException) -> list[Result]:
        """The last resort when ``process`` itself broke (a bug): each message decides alone."""
        return [self._result(m, error, peek_ids(m.body)) for m in messages]

    def _process_events(self, events: list[tuple[Message, Event]], results: dict[int, Result]) -> None:
        rules = self._rules()  # once per batch: a reload never lands in the middle of one
        try:
            snapshot = self._crm.load({e.account_id for _, e in events}, {e.id for _, e in events})
        except Exception as exc:  # noqa: BLE001 - the batch boundary: every failure is classified
            self._fail_unread(events, results, exc)
            return
        try:
            events = self._observe(events)
        except Exception as exc:  # noqa: BLE001 - as for the load: the timers wait and retry
            self._fail_unread(events, results, exc)
            return
        batch = _Batch(dict(snapshot.plans), set(snapshot.processed), snapshot.outbox, results)
        pending = list(events)
        while pending:
            wave, later, wave_accounts = [], [], set()
            for message, event in pending:
                if event.account_id in wave_accounts:
                    later.append((message, event))
                else:
                    wave_accounts.add(event.account_id)
                    wave.append((message, event))
            self._run_wave(wave, rules, batch)
            pending = later

    def _fail_unread(self, events: list[tuple[Message, Event]], results: dict[int, Result],
                     error: BaseException) -> None:
        """Nothing could be read: each account's first event fails, its later ones follow it."""
        unread = _Batch({}, set(), {}, results)
        for message, event in events:
            if event.account_id in unread.failed_accounts:
                self._hold_back(unread, message, event)
            else:
                self._fail(unread, message, event, error)

    def _observe(self, events: list[tuple[Message, Event]]) -> list[tuple[Message, Event]]:
        """Timers look before they act: the state of each one's task or check-in, from the CRM."""
        wanted = dict(w for _, e in events if (w := watched(e)) is not None)
        if not wanted:
            return events
        states = self._crm.step_states(wanted)
        return [(m, with_observed(e, states[w[0]]) if (w := watched(e)) else e) for m, e in events]

    def _run_wave(self, wave: list[tuple[Message, Event]], rules: RuleSet, batch: _Batch) -> None:
        now = self._clock()
        results = batch.results
        staged: list[tuple[Message, Event, Outcome]] = []
        for message, event in wave:
            ids = _ids(event)
            blocker = self._holds.blocking(event.account_id, event.id)
            if blocker is not None and event.account_id not in batch.failed_accounts:
                batch.failed_accounts[event.account_id] = blocker  # an earlier batch's retry
            if event.account_id in batch.failed_accounts:
                self._hold_back(batch, message, event)
            elif event.id in batch.seen:
                # Applied before, but maybe never acked because the worker died before publishing:
                # publish what the ledger kept again (listeners drop repeats by message id).
                again = batch.outbox.get(event.id, ())
                # A timer given twice acts once; counted, so a redelivery storm shows.
                seen = (Signal("timer_fired", "duplicate"),) if event.type == TIMER else ()
                results[message.tag] = Result(Ack(), again,
                                              ids | {"duplicate": True, "republished": len(again)},
                                              signals=seen)
                self._holds.release(event.account_id, event.id)
            else:
                try:
                    outcome = self._handle(event, batch.plans.get(event.account_id), rules, now)
                except Exception as exc:  # noqa: BLE001 - per-message boundary
                    self._fail(batch, message, event, exc)
                    continue
                staged.append((message, event, outcome))
        if not staged:
            return
        changes = [EventChange(e.id, e.type, e.account_id, o.actions) for _, e, o in staged]
        try:
            errors: Sequence[BaseException | None] = self._crm.apply(changes)
        except Exception as exc:  # noqa: BLE001 - the whole write failed: each event decides alone
            errors = [exc] * len(changes)
        for (message, event, outcome), error, change in zip(staged, errors, changes, strict=True):
            ids = _ids(event)
            if error is None:
                batch.seen.add(event.id)
                if outcome.plan is not None:
                    batch.plans[event.account_id] = outcome.plan
                publishes = tuple(Outgoing.of(p) for p in change.publishes)
                scheduled = tuple(Signal("timer_scheduled", str(p.payload["data"]["kind"]))
                                  for p in change.publishes if p.due_at is not None)
                results[message.tag] = Result(Ack(), publishes, ids | _summary(outcome),
                                              outcome.suppressed, outcome.signals + scheduled)
                self._holds.release(event.account_id, event.id)
            else:
                self._fail(batch, message, event, error)

    def _fail(self, batch: _Batch, message: Message, event: Event, error: BaseException) -> None:
        """The one per-message boundary for a failed event: the policy decides, and any failure
        that will be retried holds back the account's later events, so none overtakes it."""
        result = self._result(message, error, _ids(event))
        disposition = result.disposition
        if isinstance(disposition, Retry | Pause):
            batch.failed_accounts[event.account_id] = disposition
        if isinstance(disposition, Retry):
            self._holds.hold(event.account_id, event.id, disposition)
        elif isinstance(disposition, Park):
            self._holds.release(event.account_id, event.id)
        batch.results[message.tag] = result

    def _hold_back(self, batch: _Batch, message: Message, event: Event) -> None:
        """A later event of an account whose earlier one failed: released with it while paused,
        otherwise sent after it into the same retry tier. Either way no attempt is spent."""
        earlier = batch.failed_accounts[event.account_id]
        log = _ids(event) | {"held_back": True}
        if isinstance(earlier, Retry):
            earlier = Retry(earlier.tier, earlier.delay, f"held back: {earlier.reason}",
                            spends_attempt=False)
        batch.results[message.tag] = Result(earlier, log=log)

    def _result(self, message: Message, error: BaseException, ids: dict[str, Any]) -> Result:
        return Result(self._policy.decide(error, message.attempts), log=ids | {"error": str(error)})


def _ids(event: Event) -> dict[str, Any]:
    return {"event_id": event.id, "event_type": event.type, "account_id": event.account_id}


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {
        "actions": len(outcome.actions),
        "stage": outcome.plan.stage if outcome.plan else None,
    }
