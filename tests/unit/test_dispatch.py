"""The batch processor: ordering per account, duplicates, and one disposition per message."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from handlers.actions import EventChange, Provenance, PublishEvent, SavePlan
from handlers.errors import CrmUnavailableError, RuleError, WinbackError
from handlers.events import Event
from handlers.outcome import Outcome
from handlers.plan import Change, Plan, plan_key
from handlers.rules.ruleset import RuleSet
from tests.integration.harness import EMPTY_RULES, lapsed
from worker.crm.local import LocalCrm
from worker.crm.port import Outgoing, Snapshot
from worker.dispatch import Message, Processor
from worker.policy import Ack, Park, Retry, RetryPolicy

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def note_event(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """Stand-in handler: opens a plan on first sight and notes every event id in its history."""
    if event.data.account_id == "ACC-RULE-ERROR":
        raise RuleError("template 'missing.j2' not found")
    plan = plan or Plan(key=plan_key(event.account_id, 1), account_id=event.account_id, seq=1,
                        stage="discovering", opened_at=now, opened_by=event.id)
    change = Change(at=now, event_id=event.id, rules_version=rules.version, rule_id="t", what="seen")
    plan = plan.model_copy(update={"history": (*plan.history, change), "revision": plan.revision + 1})
    return Outcome(actions=(SavePlan(plan),), plan=plan)


class FailsFor:
    """The local CRM, failing the changes of one account with a transient error."""

    def __init__(self, account: str) -> None:
        self.inner, self.account, self.name = LocalCrm(":memory:"), account, "fails"
        self.load, self.records = self.inner.load, self.inner.records

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        ok = [c for c in changes if c.account_id != self.account]
        results = iter(self.inner.apply(ok))
        return [CrmUnavailableError("locked") if c.account_id == self.account else next(results)
                for c in changes]


def _messages(*events: dict[str, object] | bytes) -> list[Message]:
    return [Message(tag=i + 1, routing_key="crm.customer.lapsed",
                    body=e if isinstance(e, bytes) else json.dumps(e).encode())
            for i, e in enumerate(events)]


def _processor(crm: object) -> Processor:
    return Processor(crm, lambda: EMPTY_RULES, note_event, lambda: NOW, RetryPolicy((5.0,)))  # type: ignore[arg-type]


def _history(crm: LocalCrm, account: str) -> list[str]:
    return [c.event_id for c in crm.load([account], []).plans[account].history]


def test_events_of_one_account_in_one_batch_are_handled_in_order_each_seeing_the_last_plan() -> None:
    crm = LocalCrm(":memory:")
    results = _processor(crm).process(_messages(
        lapsed("e1", "A"), lapsed("e2", "B"), lapsed("e3", "A"), lapsed("e4", "A")))
    assert [r.disposition for r in results] == [Ack()] * 4
    assert _history(crm, "A") == ["e1", "e3", "e4"]
    assert _history(crm, "B") == ["e2"]


def test_an_event_already_applied_is_acknowledged_without_running_the_handler_again() -> None:
    crm = LocalCrm(":memory:")
    _processor(crm).process(_messages(lapsed("e1", "A")))
    results = _processor(crm).process(_messages(lapsed("e1", "A"), lapsed("e1", "A")))
    assert [r.disposition for r in results] == [Ack(), Ack()]
    assert all(r.log.get("duplicate") for r in results)
    assert _history(crm, "A") == ["e1"]


def with_feedback(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """``note_event`` plus one outgoing event, as a meeting with feedback makes."""
    outcome = note_event(event, plan, rules, now)
    assert outcome.plan is not None
    feedback = PublishEvent(key=f"{outcome.plan.key}:winback.feedback:{event.id}",
                            routing_key="winback.feedback", payload={"event_id": event.id},
                            provenance=Provenance(event.id, "t", rules.version))
    return Outcome(actions=(*outcome.actions, feedback), plan=outcome.plan)


def test_a_redelivery_of_an_applied_event_publishes_its_outgoing_events_again() -> None:
    crm = LocalCrm(":memory:")
    processor = Processor(crm, lambda: EMPTY_RULES, with_feedback, lambda: NOW, RetryPolicy((5.0,)))
    (first,) = processor.process(_messages(lapsed("e1", "A")))
    # The worker died after the CRM commit, before publishing and acking: the broker redelivers.
    (again,) = processor.process(_messages(lapsed("e1", "A")))
    expected = (Outgoing("A#1:winback.feedback:e1", "winback.feedback", {"event_id": "e1"}),)
    assert first.publishes == expected
    assert again.disposition == Ack()
    assert again.publishes == expected
    assert again.log["duplicate"] is True
    assert again.log["republished"] == 1
    assert _history(crm, "A") == ["e1"], "the handler did not run again"


def test_a_transient_failure_holds_back_only_that_accounts_later_events() -> None:
    crm = FailsFor("A")
    results = _processor(crm).process(_messages(lapsed("e1", "A"), lapsed("e2", "B"), lapsed("e3", "A")))
    kinds = [type(r.disposition) for r in results]
    assert kinds == [Retry, Ack, Retry]
    assert results[2].log["held_back"] is True
    assert list(crm.load(["A", "B"], []).plans) == ["B"]


def test_an_event_held_back_follows_the_failed_one_into_its_tier_without_spending_an_attempt() -> None:
    crm = FailsFor("A")
    processor = Processor(crm, lambda: EMPTY_RULES, note_event, lambda: NOW,  # type: ignore[arg-type]
                          RetryPolicy((5.0, 30.0)))
    failed, held = processor.process([
        Message(1, "crm.customer.lapsed", json.dumps(lapsed("e1", "A")).encode(), attempts=1),
        Message(2, "crm.customer.lapsed", json.dumps(lapsed("e2", "A")).encode(), attempts=0)])
    assert failed.disposition == Retry(1, 30.0, failed.disposition.reason)  # type: ignore[union-attr]
    assert held.disposition == Retry(1, 30.0, held.disposition.reason,  # type: ignore[union-attr]
                                     spends_attempt=False)


def test_a_retried_event_holds_back_its_accounts_events_of_later_batches_until_it_is_handled() -> None:
    crm = FailsFor("A")
    processor = _processor(crm)
    (first,) = processor.process(_messages(lapsed("e1", "A")))
    assert isinstance(first.disposition, Retry)
    crm.account = "nobody"  # the CRM is back, before e1's retry is due
    later, other = processor.process(_messages(lapsed("e2", "A"), lapsed("e3", "B")))
    assert later.disposition == Retry(0, 5.0, later.disposition.reason,  # type: ignore[union-attr]
                                      spends_attempt=False), "e2 waits behind e1"
    assert other.disposition == Ack(), "other accounts go on"
    (back,) = processor.process([Message(1, "crm.customer.lapsed",
                                         json.dumps(lapsed("e1", "A")).encode(), attempts=1)])
    (after,) = processor.process(_messages(lapsed("e2", "A")))
    assert (back.disposition, after.disposition) == (Ack(), Ack())
    assert _history(crm.inner, "A") == ["e1", "e2"]


def fails_on_e1(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """``note_event``, but a bug (a KeyError) on the event ``e1``."""
    if event.id == "e1":
        raise KeyError("missing")
    return note_event(event, plan, rules, now)


class AppliesBadly(FailsFor):
    """Fails the changes of one account with an error nobody foresaw (not a WinbackError)."""

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        return [ValueError("odd") if c.account_id == self.account else None  # type: ignore[misc]
                for c in changes]


def test_an_unexpected_error_in_the_handler_holds_back_that_accounts_later_events() -> None:
    crm = LocalCrm(":memory:")
    processor = Processor(crm, lambda: EMPTY_RULES, fails_on_e1, lambda: NOW, RetryPolicy((5.0,)))
    results = processor.process(_messages(lapsed("e1", "A"), lapsed("e2", "B"), lapsed("e3", "A")))
    assert [type(r.disposition) for r in results] == [Retry, Ack, Retry]
    assert results[2].log["held_back"] is True
    assert list(crm.load(["A", "B"], []).plans) == ["B"], "e3 did not overtake e1"


def test_an_unexpected_error_from_the_crm_holds_back_that_accounts_later_events() -> None:
    crm = AppliesBadly("A")
    results = _processor(crm).process(_messages(lapsed("e1", "A"), lapsed("e2", "A")))
    assert [type(r.disposition) for r in results] == [Retry, Retry]
    assert results[1].log["held_back"] is True


def test_invalid_messages_and_rule_errors_are_parked_while_the_rest_are_written() -> None:
    crm = LocalCrm(":memory:")
    results = _processor(crm).process(_messages(
        b"{oops", lapsed("e2", "ACC-RULE-ERROR"), lapsed("e3", "B")))
    assert [type(r.disposition) for r in results] == [Park, Park, Ack]
    assert results[1].disposition == Park("template 'missing.j2' not found", "RuleError")
    assert results[1].log["account_id"] == "ACC-RULE-ERROR"
    assert list(crm.load(["B", "ACC-RULE-ERROR"], []).plans) == ["B"]


def test_a_crm_that_cannot_be_read_retries_the_whole_batch() -> None:
    crm = LocalCrm(":memory:")
    crm.close()  # every read now fails
    results = _processor(crm).process(_messages(lapsed("e1", "A"), lapsed("e2", "B")))
    assert [type(r.disposition) for r in results] == [Retry, Retry]


class ReadsBefore:
    """The local CRM as a second worker saw it: its first read returns an earlier snapshot."""

    def __init__(self, inner: LocalCrm, snapshot: Snapshot) -> None:
        self.inner, self.name, self._stale = inner, "stale", snapshot
        self.apply, self.records = inner.apply, inner.records

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        stale, self._stale = self._stale, None
        return stale if stale is not None else self.inner.load(account_ids, event_ids)


def test_a_worker_that_read_a_stale_plan_retries_and_its_event_lands_on_the_newer_plan() -> None:
    crm = LocalCrm(":memory:")
    _processor(crm).process(_messages(lapsed("e1", "A")))
    seen_by_second_worker = crm.load(["A"], ["e3"])
    _processor(crm).process(_messages(lapsed("e2", "A")))  # the first worker moves on meanwhile

    second = _processor(ReadsBefore(crm, seen_by_second_worker))
    (result,) = second.process(_messages(lapsed("e3", "A")))
    assert isinstance(result.disposition, Retry)
    assert "PlanConflictError" in result.disposition.reason
    assert _history(crm, "A") == ["e1", "e2"], "the newer plan was not overwritten"

    (retried,) = second.process(_messages(lapsed("e3", "A")))
    assert retried.disposition == Ack()
    assert _history(crm, "A") == ["e1", "e2", "e3"]
