"""A worker that dies after the CRM commit and before publishing loses no outgoing event.

The ledger entry of each applied event keeps the events it publishes (``winback.feedback``...),
committed together with the CRM writes. The broker redelivers the unacknowledged message, the
next worker finds it applied, writes nothing, and publishes what the ledger kept, with the same
message id, before acking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.registry import handle
from tests.adapters import ADAPTERS, open_crm
from tests.integration.broker import Names, channel, message_count, publish, work_count
from tests.integration.harness import make_consumer, make_settings, running
from tests.integration.story import STORY, WON
from tests.waiting import wait_until
from worker.crm.port import Crm, Record
from worker.dispatch import Message, Processor
from worker.policy import RetryPolicy
from worker.rules_source import load_rules

RULES = Path(__file__).parents[2] / "config" / "rules.yaml"
# The won account's lapse, and the exit interview whose feedback goes to marketing and product.
LAPSE, INTERVIEW = STORY[0], STORY[3]


@pytest.fixture(params=ADAPTERS)
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    with open_crm(request.param, tmp_path) as adapter:
        yield adapter


def _take_with_ids(queue: str) -> list[tuple[str | None, dict[str, Any]]]:
    out = []
    with channel() as ch:
        while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
            _, props, body = got
            out.append((props.message_id, json.loads(body)))
    return out


def test_outgoing_events_of_an_applied_but_unacked_event_are_published_on_redelivery(
    names: Names, crm: Crm, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path)
    listener = f"{names.prefix}.feedback-listener"
    with channel() as ch:
        ch.queue_declare(listener, auto_delete=False)
        ch.queue_bind(listener, settings.exchange, routing_key="winback.feedback")
    rules = load_rules(RULES)

    # The first worker handles both events and commits, then dies: nothing published, nothing acked.
    first = Processor(crm, lambda: rules, handle, lambda: datetime.now(UTC), RetryPolicy((1.0,)))
    lost = first.process([Message(i, e["type"], json.dumps(e).encode())
                          for i, e in enumerate((LAPSE, INTERVIEW), start=1)])
    (kept,) = [p for p in lost[1].publishes if p.due_at is None]  # the timers wait apart
    written = crm.records(WON)

    # The broker redelivers both to the next worker.
    for event in (LAPSE, INTERVIEW):
        publish(names, event)
    consumer, _, _ = make_consumer(settings, crm=crm, handle=handle, rules=rules)
    with running(consumer):
        wait_until(lambda: work_count(settings) == 0 and message_count(listener) > 0,
                   timeout=30, what="the redelivered events to arrive")
        assert consumer.wait_settled(30), "the redelivered events settled"

    feedback = _take_with_ids(listener)
    assert feedback == [(kept.message_id, kept.payload)]
    assert kept.payload["account_id"] == WON
    assert "Per-region status page" in json.dumps(kept.payload)
    # The interview's check-in timer is overdue by now and fires (a nudge): that is its job, not
    # the redelivery's, so records the timers wrote are left out of the comparison.
    assert _not_by_timers(crm.records(WON)) == _not_by_timers(written), "the redelivery wrote nothing again"
    assert message_count(settings.parking_queue) == 0
    with channel() as ch:
        ch.queue_delete(listener)


def _not_by_timers(records: list[Record]) -> list[Record]:
    return [r for r in records
            if r.kind != "plan" and not str(r.fields.get("event_id", "")).startswith("timer:")]
