"""The snapshot reads what the writes would look up: fewer calls, and never a stale answer served.

A batch's ``load`` reads its accounts' worker-written keys, check-in Event ids and owners in the
same call as the plans; its writes then look up only what that does not cover. A record another
worker wrote after the snapshot is never duplicated: its plan revision claim makes the stale write
fail whole, as a plan conflict, and the next snapshot sees the record.
"""

from __future__ import annotations

from handlers.actions import EventChange, SavePlan, SetCheckInStatus
from handlers.errors import PlanConflictError
from tests.salesforce.changes import OWNER, account_id, checkin, plan, prov, task
from tests.sfserver import FAST_RETRY, SalesforceServer, jwt_settings
from worker.crm.salesforce import SalesforceCrm
from worker.crm.salesforce_known import Known, UserCache
from worker.crm.salesforce_records import cancelled_subject


def _calls(server: SalesforceServer) -> list[str]:
    return [c.path.rsplit("/", 1)[-1] for c in server.calls if "/services/data" in c.path]


def _first_lapse(n: int, event_id: str) -> EventChange:
    account = account_id(n)
    return EventChange(event_id, "crm.customer.lapsed", account,
                       (task(account, event_id), SavePlan(plan(account, event_id=event_id))))


def test_a_batch_whose_snapshot_covers_its_accounts_writes_without_a_key_look_up(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    changes = [_first_lapse(n, f"evt-{n}") for n in range(20)]
    crm.apply(changes[:1])  # the owner (a user) is asked once, then kept for a while
    crm.load({c.account_id for c in changes[1:]}, {c.event_id for c in changes[1:]})
    before = len(_calls(server))
    assert crm.apply(changes[1:]) == [None] * 19
    assert _calls(server)[before:] == ["graph"]  # composite/graph: the writes, nothing else


def test_a_key_written_before_the_snapshot_is_not_written_again(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    account = account_id(1)
    assert crm.apply([_first_lapse(1, "evt-1")]) == [None]
    # A replay under a new event id, on the plan as now saved: the snapshot knows the task.
    saved = plan(account, event_id="evt-1").model_copy(update={"revision": 2})
    again = EventChange("evt-1-again", "crm.customer.lapsed", account,
                        (task(account, "evt-1-again"), SavePlan(saved)))
    crm.load({account}, {"evt-1-again"})
    before = len(_calls(server))
    assert crm.apply([again]) == [None]
    assert _calls(server)[before:] == ["graph"]
    assert len(server.records("Task")) == 1


def test_a_record_written_by_another_worker_after_the_snapshot_fails_the_stale_write_whole(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    account = account_id(2)
    other = SalesforceCrm.from_settings(jwt_settings(server), retry=FAST_RETRY)
    crm.load({account}, {"evt-a"})  # knows of no task for the account
    assert other.apply([_first_lapse(2, "evt-b")]) == [None]
    [error] = crm.apply([_first_lapse(2, "evt-a")])
    assert isinstance(error, PlanConflictError)
    assert len(server.records("Task")) == 1
    crm.load({account}, {"evt-a"})  # the retry, on a fresh snapshot, finds the task
    saved = plan(account, event_id="evt-b").model_copy(update={"revision": 2})
    retried = EventChange("evt-a", "crm.customer.lapsed", account,
                          (task(account, "evt-a"), SavePlan(saved)))
    assert crm.apply([retried]) == [None]
    assert len(server.records("Task")) == 1
    other.close()


def test_the_next_wave_finds_the_check_in_the_first_wave_created(
    server: SalesforceServer, crm: SalesforceCrm
) -> None:
    account = account_id(3)
    first = plan(account, event_id="evt-1")
    scheduled = EventChange("evt-1", "crm.customer.lapsed", account,
                            (checkin(account, "evt-1"), SavePlan(first)))
    cancel = SetCheckInStatus(first.key, account, (f"{account}#1:checkin:1",), "cancelled",
                              "closed", prov("evt-2"))
    closed = EventChange("evt-2", "crm.meeting.held", account,
                         (cancel, SavePlan(first.model_copy(update={"revision": 2}))))
    crm.load({account}, {"evt-1", "evt-2"})
    assert crm.apply([scheduled, closed]) == [None, None]  # two waves of one account
    [event] = server.records("Event")
    assert event["Winback_Status__c"] == "cancelled"
    assert event["Subject"] == cancelled_subject("Check-in")  # the subject the first wave wrote


def test_known_learns_only_what_a_graph_created() -> None:
    known = Known(frozenset({"001A"}))
    nodes = [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Event", "referenceId": "n1",
         "body": {"Winback_Key__c": "k1"}},
        {"method": "PATCH", "url": "/services/data/v62.0/sobjects/Event/00U1", "referenceId": "n2",
         "body": {"Winback_Status__c": "done"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Winback_Ledger__c",
         "referenceId": "ledger", "body": {"Event_Id__c": "e1"}},
    ]
    known.learn(nodes, [{"referenceId": "n1", "body": {"id": "00U000000000001AAA"}}])
    assert known.keys == {("Event", "k1")}
    assert known.event_ids == {"k1": "00U000000000001AAA"}
    assert known.covers("Task", "001A")
    assert not known.covers("CampaignMember", "001A")
    assert not known.covers("Task", "001B")


def test_a_cached_user_is_served_while_fresh_and_asked_again_once_stale() -> None:
    now = [0.0]
    users = UserCache(ttl=60.0, clock=lambda: now[0])
    users.put({OWNER: {"Id": OWNER, "IsActive": True}})
    assert users.get([OWNER[:15]]) == {OWNER[:15]: {"Id": OWNER, "IsActive": True}}
    now[0] = 60.0
    assert users.get([OWNER]) == {}

