"""API calls per event: reads and writes of many events travel together, within Salesforce's limits.

Run ``pytest tests/salesforce/test_batching.py -s -k burst`` to see the measured figure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers.actions import EventChange
from handlers.registry import handle
from tests.salesforce.changes import OWNER, account_id, contact_id, event_entries, lapse, task
from tests.sfserver import SalesforceServer
from worker.crm.salesforce import SalesforceCrm
from worker.dispatch import Message, Processor
from worker.policy import Ack, RetryPolicy
from worker.rules_source import load_rules

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
BURST = 1000


def _lapsed(n: int) -> bytes:
    # Every other customer is small enough for the survey route; the rest get personal outreach.
    value = 2_500 if n % 2 else 48_000
    return json.dumps({
        "specversion": "1.0", "id": f"evt-lapsed-{n}", "source": "crm/test",
        "type": "crm.customer.lapsed", "time": "2026-11-22T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"account_id": account_id(n), "account_name": f"Customer {n}",
                 "lapsed_at": "2026-11-20", "owner_id": OWNER, "contact_id": contact_id(n),
                 "contact_name": "Dana Reyes", "contact_email": f"dana{n}@example.com",
                 "annual_value": value, "currency": "EUR"},
    }).encode()


@pytest.mark.parametrize("batch", [100, 1000], ids=["default-batch", "largest-batch"])
def test_a_burst_of_1000_lapsed_events_costs_far_below_one_api_call_per_event(
    server: SalesforceServer, crm: SalesforceCrm, capsys: pytest.CaptureFixture[str], batch: int
) -> None:
    rules = load_rules(ROOT / "config" / "rules.yaml")
    processor = Processor(crm, lambda: rules, handle, lambda: NOW, RetryPolicy())
    messages = [Message(n, "crm.customer.lapsed", _lapsed(n)) for n in range(BURST)]
    crm.check()
    before = server.api_calls
    for start in range(0, BURST, batch):  # as the consumer hands them over, WINBACK_BATCH_SIZE each
        results = processor.process(messages[start:start + batch])
        assert [type(r.disposition) for r in results] == [Ack] * len(results), results[0]
    calls = server.api_calls - before
    records = sum(len(server.records(o)) for o in ("Task", "Event", "EmailMessage",
                                                    "CampaignMember", "Winback_Plan__c"))
    with capsys.disabled():
        print(f"\n{BURST} lapsed events in batches of {batch}: {calls} Salesforce API calls, "
              f"{calls / BURST:.3f} per event, {records} records written")
    assert len(event_entries(server.records("Winback_Ledger__c"))) == BURST
    assert len(server.records("Winback_Plan__c")) == BURST
    assert calls / BURST <= 0.05


def test_a_batch_of_100_events_takes_one_read_one_lookup_and_two_write_calls(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    changes = [lapse(n) for n in range(100)]
    crm.check()
    before = server.api_calls
    snapshot = crm.load([c.account_id for c in changes], [c.event_id for c in changes])
    assert snapshot.plans == {}
    assert crm.apply(changes) == [None] * 100
    paths = [c.path.rsplit("/", 2)[-2:] for c in server.calls[-(server.api_calls - before):]]
    assert paths == [["v62.0", "composite"], ["v62.0", "composite"],
                     ["composite", "graph"], ["composite", "graph"]]


def test_plan_state_for_a_batch_of_accounts_is_read_in_one_call(server: SalesforceServer,
                                                                 crm: SalesforceCrm) -> None:
    changes = [lapse(n) for n in range(150)]
    assert crm.apply(changes) == [None] * 150
    before = server.api_calls
    snapshot = crm.load([c.account_id for c in changes], [c.event_id for c in changes])
    assert server.api_calls - before == 1
    assert len(snapshot.plans) == 150
    assert snapshot.processed == {c.event_id for c in changes}


def test_big_events_are_packed_within_the_500_node_limit_of_a_request(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    # 40 tasks + ledger = 41 nodes per graph: 12 graphs fit in one request, not 75.
    changes = [
        EventChange(f"evt-{n}", "crm.meeting.held", account_id(n),
                    tuple(task(account_id(n), f"evt-{n}", f"t{i}") for i in range(40)))
        for n in range(30)
    ]
    assert crm.apply(changes) == [None] * 30
    assert sum(1 for c in server.calls if c.path.endswith("composite/graph")) == 3
    assert len(server.records("Task")) == 1200


def test_events_of_one_account_in_one_batch_are_written_in_order(server: SalesforceServer,
                                                                 crm: SalesforceCrm) -> None:
    first = lapse(7)
    stored = first.writes[-1].plan  # type: ignore[union-attr]
    later_plan = stored.model_copy(update={"stage": "planning", "revision": stored.revision + 1})
    from handlers.actions import SavePlan

    second = EventChange("evt-second", "crm.meeting.held", first.account_id, (SavePlan(later_plan),))
    assert crm.apply([first, second]) == [None, None]
    (plan,) = crm.load([first.account_id], []).plans.values()
    assert plan.stage == "planning"
