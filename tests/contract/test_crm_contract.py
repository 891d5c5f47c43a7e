"""The CRM port's contract: every adapter stores, reads back and deduplicates the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.actions import (
    AddToCampaign,
    CreateTask,
    DraftEmail,
    EventChange,
    Provenance,
    PublishEvent,
    SavePlan,
    ScheduleCheckIn,
    SetCheckInStatus,
)
from handlers.errors import PlanConflictError
from handlers.figures import Acknowledgements
from handlers.plan import CheckIn, Plan, plan_key
from tests.adapters import OWNER_ID, complete_task, salesforce_rows
from worker.crm.fitting import MARKER
from worker.crm.port import Crm, Outgoing

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
# Records of the test org (tests/sfserver/cast.py); the embedded CRM takes any id.
A1, A2, A3 = (f"001{n:012d}AAA" for n in (1, 2, 3))
C1, SURVEY = "003000000000001AAA", "701000000SURVEYAAA"


def _prov(event_id: str) -> Provenance:
    return Provenance(event_id=event_id, rule_id="rule-1", rules_version="v1")


def _plan(account: str = A1, seq: int = 1, stage: str = "discovering", revision: int = 1) -> Plan:
    return Plan(key=plan_key(account, seq), account_id=account, seq=seq, stage=stage,  # type: ignore[arg-type]
                opened_at=NOW, opened_by="evt-1", account_name="Acme", revision=revision)


def _task(account: str, event_id: str, key: str = "discovery") -> CreateTask:
    return CreateTask(
        key=f"{account}#1:{key}", plan_key=f"{account}#1", account_id=account, kind="discovery",
        subject="Find out why Acme left", description="Why do you no longer use our products?",
        owner_id=OWNER_ID, due_at=NOW + timedelta(days=3), priority="normal",
        provenance=_prov(event_id), contact_id=C1,
        reminder_at=NOW + timedelta(minutes=20),
    )


def _change(event_id: str, *actions: object, account: str = A1) -> EventChange:
    return EventChange(event_id, "crm.customer.lapsed", account, tuple(actions))  # type: ignore[arg-type]


def test_a_change_is_stored_with_adapter_neutral_fields(crm: Crm) -> None:
    task = _task(A1, "evt-1")
    draft = DraftEmail(key=f"{A1}#1:apology", plan_key=f"{A1}#1", account_id=A1, kind="apology",
                       subject="We let you down", body_html="<p>Sorry</p>", body_text="Sorry",
                       owner_id=OWNER_ID, provenance=_prov("evt-1"), to_address="d@example.com",
                       contact_id=C1)
    checkin = ScheduleCheckIn(key=f"{A1}#1:checkin:1", plan_key=f"{A1}#1", account_id=A1, slot=1,
                              start_at=NOW + timedelta(days=7), duration_minutes=30,
                              subject="Check-in with Acme", description="How are we doing?",
                              owner_id=OWNER_ID, provenance=_prov("evt-1"), contact_id=C1)
    member = AddToCampaign(key=f"{A1}#1:survey", plan_key=f"{A1}#1", account_id=A1,
                           campaign_id=SURVEY, contact_id=C1, provenance=_prov("evt-1"))
    plan = _plan()
    assert crm.apply([_change("evt-1", task, draft, checkin, member, SavePlan(plan))]) == [None]

    records = {(r.kind, r.key): r for r in crm.records()}
    assert records[("plan", f"{A1}#1")].fields == plan.model_dump(mode="json")
    assert records[("task", f"{A1}#1:discovery")].fields == {
        "kind": "discovery", "subject": "Find out why Acme left",
        "description": "Why do you no longer use our products?", "owner_id": OWNER_ID,
        "due_at": "2026-11-25T10:00:00Z", "reminder_at": "2026-11-22T10:20:00Z",
        "priority": "normal", "status": "open", "contact_id": C1, "completed_at": None,
        "plan_key": f"{A1}#1",
        "event_id": "evt-1", "rule_id": "rule-1", "rules_version": "v1",
    }
    assert records[("email_draft", f"{A1}#1:apology")].fields["status"] == "draft"
    assert records[("email_draft", f"{A1}#1:apology")].fields["body_html"] == "<p>Sorry</p>"
    assert records[("checkin", f"{A1}#1:checkin:1")].fields["start_at"] == "2026-11-29T10:00:00Z"
    assert records[("checkin", f"{A1}#1:checkin:1")].fields["status"] == "pending"
    assert records[("campaign_member", f"{A1}#1:survey")].fields["campaign_id"] == SURVEY
    assert len(records) == 5


def test_the_same_event_applied_twice_writes_once(crm: Crm) -> None:
    change = _change("evt-1", _task(A1, "evt-1"), SavePlan(_plan()))
    assert crm.apply([change]) == [None]
    assert crm.apply([change]) == [None]
    assert [r.key for r in crm.records()] == [f"{A1}#1", f"{A1}#1:discovery"]
    assert crm.load([A1], ["evt-1", "evt-2"]).processed == frozenset({"evt-1"})


def test_a_second_event_with_the_same_record_key_does_not_duplicate_it(crm: Crm) -> None:
    crm.apply([_change("evt-1", _task(A1, "evt-1"))])
    crm.apply([_change("evt-2", _task(A1, "evt-2"))])
    tasks = [r for r in crm.records() if r.kind == "task"]
    assert len(tasks) == 1
    assert tasks[0].fields["event_id"] == "evt-1", "the first write stands"


def test_load_returns_the_latest_plan_of_each_account_open_or_closed(crm: Crm) -> None:
    lost = _plan(A1, 1).model_copy(update={"stage": "lost", "outcome": "lost"})
    crm.apply([
        _change("evt-1", SavePlan(lost)),
        _change("evt-2", SavePlan(_plan(A1, 2))),
        _change("evt-3", SavePlan(_plan(A2, 1)), account=A2),
    ])
    snapshot = crm.load([A1, A2, A3], ["evt-1", "evt-9"])
    assert {a: (p.seq, p.stage) for a, p in snapshot.plans.items()} == {
        A1: (2, "discovering"), A2: (1, "discovering")}
    assert snapshot.processed == frozenset({"evt-1"})
    assert [r.key for r in crm.records(A1) if r.kind == "plan"] == [f"{A1}#1", f"{A1}#2"]


def test_saving_a_plan_again_updates_it_in_place(crm: Crm) -> None:
    crm.apply([_change("evt-1", SavePlan(_plan()))])
    later = _plan(revision=2).model_copy(update={
        "stage": "checking-in", "checkins": (CheckIn(slot=1, key=f"{A1}#1:checkin:1", start_at=NOW),)})
    crm.apply([_change("evt-2", SavePlan(later))])
    (plan,) = crm.load([A1], []).plans.values()
    assert plan == later


def test_check_ins_are_marked_done_or_cancelled(crm: Crm) -> None:
    checkins = [
        ScheduleCheckIn(key=f"{A1}#1:checkin:{n}", plan_key=f"{A1}#1", account_id=A1, slot=n,
                        start_at=NOW + timedelta(days=7 * n), duration_minutes=30, subject="Check-in",
                        description="", owner_id=OWNER_ID, provenance=_prov("evt-1"))
        for n in (1, 2)
    ]
    crm.apply([_change("evt-1", *checkins)])
    done = SetCheckInStatus(plan_key=f"{A1}#1", account_id=A1, keys=(f"{A1}#1:checkin:1",),
                            status="done", reason="held", provenance=_prov("evt-2"))
    cancel = SetCheckInStatus(plan_key=f"{A1}#1", account_id=A1, keys=(f"{A1}#1:checkin:2",),
                              status="cancelled", reason="plan lost", provenance=_prov("evt-3"))
    assert crm.apply([_change("evt-2", done), _change("evt-3", cancel)]) == [None, None]
    status = {r.key: r.fields["status"] for r in crm.records() if r.kind == "checkin"}
    assert status == {f"{A1}#1:checkin:1": "done", f"{A1}#1:checkin:2": "cancelled"}


def test_publish_actions_are_not_crm_records(crm: Crm) -> None:
    event = PublishEvent(key="k", routing_key="winback.feedback", payload={"a": 1}, provenance=_prov("e"))
    assert crm.apply([_change("evt-1", event)]) == [None]
    assert crm.records() == []


def test_outgoing_events_are_kept_in_the_ledger_with_their_cause(crm: Crm) -> None:
    feedback = PublishEvent(key=f"{A1}#1:winback.feedback:MTG-1", routing_key="winback.feedback",
                            payload={"type": "winback.feedback", "feedback": ["Per-region status page"],
                                     "nested": {"n": 1, "ok": True}}, provenance=_prov("evt-1"))
    replayed = PublishEvent(key=f"{A1}#1:other", routing_key="winback.other", payload={"a": "é"},
                            provenance=_prov("evt-1"))
    assert crm.apply([_change("evt-1", _task(A1, "evt-1"), feedback),
                      _change("evt-2", _task(A1, "evt-2"))]) == [None, None]
    snapshot = crm.load([A1], ["evt-1", "evt-2", "evt-3"])
    assert snapshot.processed == frozenset({"evt-1", "evt-2"})
    assert snapshot.outbox == {"evt-1": (Outgoing(f"{A1}#1:winback.feedback:MTG-1", "winback.feedback",
                                                  feedback.payload),)}
    # A replay of evt-1 with other outgoing events writes nothing and keeps the first ones.
    assert crm.apply([_change("evt-1", replayed)]) == [None]
    assert crm.load([], ["evt-1"]).outbox["evt-1"][0].message_id == f"{A1}#1:winback.feedback:MTG-1"


def test_many_changes_in_one_apply_are_each_stored(crm: Crm) -> None:
    changes = [_change(f"evt-{i}", _task(f"001{i:012d}AAA", f"evt-{i}"), SavePlan(_plan(f"001{i:012d}AAA")),
                       account=f"001{i:012d}AAA") for i in range(250)]
    assert crm.apply(changes) == [None] * 250
    assert len(crm.records()) == 500
    assert len(crm.load([f"001{i:012d}AAA" for i in range(250)], []).plans) == 250


def test_a_plan_saved_from_a_stale_read_is_refused_whole_and_the_newer_plan_stands(crm: Crm) -> None:
    # Two workers read revision 1 and both handle an event for the account; the second to write
    # must not overwrite the first: its whole change is refused and handled again later.
    assert crm.apply([_change("evt-1", SavePlan(_plan()))]) == [None]
    first = _plan(revision=2).model_copy(update={"stage": "planning"})
    stale = _plan(revision=2).model_copy(update={"stage": "checking-in"})
    results = crm.apply([
        _change("evt-2", _task(A1, "evt-2", key="from-evt-2"), SavePlan(first)),
        _change("evt-3", _task(A1, "evt-3", key="from-evt-3"), SavePlan(stale)),
    ])
    assert results[0] is None
    assert isinstance(results[1], PlanConflictError)
    snapshot = crm.load([A1], ["evt-2", "evt-3"])
    assert snapshot.plans[A1].stage == "planning"
    assert snapshot.processed == frozenset({"evt-2"}), "the refused event is not marked applied"
    assert [r.key for r in crm.records() if r.kind == "task"] == [f"{A1}#1:from-evt-2"]


def test_a_refused_change_between_two_others_leaves_both_written(crm: Crm) -> None:
    assert crm.apply([_change("evt-1", SavePlan(_plan()))]) == [None]
    stale = _plan(revision=1).model_copy(update={"stage": "checking-in"})  # revision 1 is taken
    results = crm.apply([
        _change("evt-2", _task(A2, "evt-2"), SavePlan(_plan(A2)), account=A2),
        _change("evt-3", _task(A1, "evt-3", key="from-evt-3"), SavePlan(stale)),
        _change("evt-4", _task(A3, "evt-4"), SavePlan(_plan(A3)), account=A3),
    ])
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], PlanConflictError)
    snapshot = crm.load([A1, A2, A3], ["evt-2", "evt-3", "evt-4"])
    assert snapshot.processed == frozenset({"evt-2", "evt-4"})
    assert {a: p.stage for a, p in snapshot.plans.items()} == {
        A1: "discovering", A2: "discovering", A3: "discovering"}
    assert sorted(r.key for r in crm.records() if r.kind == "task") == [
        f"{A2}#1:discovery", f"{A3}#1:discovery"]


def test_two_workers_opening_the_same_plan_cannot_both_succeed(crm: Crm) -> None:
    results = crm.apply([
        _change("evt-1", SavePlan(_plan().model_copy(update={"opened_by": "evt-1"}))),
        _change("evt-2", SavePlan(_plan().model_copy(update={"opened_by": "evt-2"}))),
    ])
    assert results[0] is None
    assert isinstance(results[1], PlanConflictError)
    assert crm.load([A1], []).plans[A1].opened_by == "evt-1"


def test_a_task_completed_in_the_crm_reads_back_done_with_its_completion_time(crm: Crm) -> None:
    from tests.adapters import complete_task

    crm.apply([_change("evt-1", _task(A1, "evt-1"), _task(A1, "evt-1", key="other"))])
    complete_task(crm, f"{A1}#1:discovery", NOW + timedelta(minutes=7, seconds=30))
    tasks = {r.key: r.fields for r in crm.records(A1) if r.kind == "task"}
    assert (tasks[f"{A1}#1:discovery"]["status"], tasks[f"{A1}#1:discovery"]["completed_at"]) == (
        "done", "2026-11-22T10:07:30Z")
    assert (tasks[f"{A1}#1:other"]["status"], tasks[f"{A1}#1:other"]["completed_at"]) == ("open", None)


def test_the_calendar_tells_the_truth_held_early_moves_cancelled_is_marked(crm: Crm) -> None:
    booked = [NOW + timedelta(days=7 * n) for n in (1, 2, 3)]
    checkins = [
        ScheduleCheckIn(key=f"{A1}#1:checkin:{n}", plan_key=f"{A1}#1", account_id=A1, slot=n,
                        start_at=booked[n - 1], duration_minutes=45,
                        subject=f"Check-in {n} with Acme", description="", owner_id=OWNER_ID,
                        provenance=_prov("evt-1"))
        for n in (1, 2, 3)
    ]
    crm.apply([_change("evt-1", *checkins)])
    held_at = booked[0] - timedelta(days=2, hours=3)  # held two days early
    done = SetCheckInStatus(f"{A1}#1", A1, (checkins[0].key,), "done", "held", _prov("evt-2"),
                            held_at=held_at, duration_minutes=45)
    cancel = SetCheckInStatus(f"{A1}#1", A1, (checkins[1].key,), "cancelled", "plan lost",
                              _prov("evt-3"))
    again = SetCheckInStatus(f"{A1}#1", A1, (checkins[1].key,), "cancelled", "again",
                             _prov("evt-4"))
    assert crm.apply([_change("evt-2", done), _change("evt-3", cancel)]) == [None, None]
    assert crm.apply([_change("evt-4", again)]) == [None]
    shown = {r.key: (r.fields["status"], r.fields["start_at"], r.fields["subject"])
             for r in crm.records() if r.kind == "checkin"}
    assert shown == {
        checkins[0].key: ("done", "2026-11-27T07:00:00Z", "Check-in 1 with Acme"),
        checkins[1].key: ("cancelled", "2026-12-06T10:00:00Z", "Cancelled: Check-in 2 with Acme"),
        checkins[2].key: ("pending", "2026-12-13T10:00:00Z", "Check-in 3 with Acme"),
    }
    rows = salesforce_rows(crm, "Event")
    if rows is not None:  # the Event's end moved with its start; the cancelled one is free time
        by_key = {r["Winback_Key__c"]: r for r in rows}
        held = by_key[checkins[0].key]
        assert (held["StartDateTime"], held["EndDateTime"]) == (
            "2026-11-27T07:00:00.000+0000", "2026-11-27T07:45:00.000+0000")
        assert (by_key[checkins[1].key]["ShowAs"], by_key[checkins[2].key]["ShowAs"]) == (
            "Free", "Busy")


def test_a_check_in_cancelled_in_the_change_that_books_it_is_marked_too(crm: Crm) -> None:
    checkin = ScheduleCheckIn(key=f"{A1}#1:checkin:1", plan_key=f"{A1}#1", account_id=A1, slot=1,
                              start_at=NOW + timedelta(days=7), duration_minutes=30,
                              subject="S" * 255, description="", owner_id=OWNER_ID,
                              provenance=_prov("evt-1"))
    cancel = SetCheckInStatus(f"{A1}#1", A1, (checkin.key,), "cancelled", "closed", _prov("evt-1"))
    assert crm.apply([_change("evt-1", checkin, cancel)]) == [None]
    (record,) = [r for r in crm.records() if r.kind == "checkin"]
    assert record.fields["status"] == "cancelled"
    assert record.fields["subject"].startswith("Cancelled: SSS")
    assert record.fields["subject"].endswith(MARKER)
    assert len(record.fields["subject"]) == 255


def test_step_states_say_whether_a_task_was_closed_and_a_checkin_held(crm: Crm) -> None:
    task, other = _task(A1, "evt-1"), _task(A1, "evt-1", key="ack")
    checkin = ScheduleCheckIn(key=f"{A1}#1:checkin:1", plan_key=f"{A1}#1", account_id=A1,
                              slot=1, start_at=NOW + timedelta(days=7), duration_minutes=30,
                              subject="Check-in with Acme", description="", owner_id=OWNER_ID,
                              provenance=_prov("evt-1"))
    assert crm.apply([_change("evt-1", task, other, checkin, SavePlan(_plan()))]) == [None]
    keys = {task.key: A1, other.key: A1, checkin.key: A1, f"{A1}#1:nope": A1}
    assert crm.step_states(keys) == {task.key: "open", other.key: "open",
                                     checkin.key: "pending", f"{A1}#1:nope": "missing"}
    complete_task(crm, task.key, NOW)
    cancel = SetCheckInStatus(f"{A1}#1", A1, (checkin.key,), "cancelled", "closed",
                              _prov("evt-2"))
    assert crm.apply([_change("evt-2", cancel, SavePlan(_plan(revision=2)))]) == [None]
    assert crm.step_states(keys) == {task.key: "done", other.key: "open",
                                     checkin.key: "cancelled", f"{A1}#1:nope": "missing"}


def test_a_timer_is_kept_in_the_outbox_with_its_due_time(crm: Crm) -> None:
    timer = PublishEvent("timer:ACC-1#1:ack:timer", "winback.timer.due", {"id": "timer:x"},
                         _prov("evt-1"), due_at=NOW + timedelta(minutes=20))
    assert crm.apply([_change("evt-1", timer, SavePlan(_plan()))]) == [None]
    (kept,) = crm.load({A1}, {"evt-1"}).outbox["evt-1"]
    assert kept == Outgoing(timer.key, "winback.timer.due", {"id": "timer:x"},
                            (NOW + timedelta(minutes=20)).isoformat())
    assert kept.due == NOW + timedelta(minutes=20)


def test_acknowledgement_fields_are_stored_per_plan_and_overwritten(crm: Crm) -> None:
    assert crm.apply([_change("evt-1", SavePlan(_plan())),
                      _change("evt-2", SavePlan(_plan(A2)), account=A2)]) == [None, None]
    assert crm.acknowledgements().get(plan_key(A1, 1), Acknowledgements()) == Acknowledgements()
    first = Acknowledgements(None, in_sla=0, late=0, pending=1)
    crm.write_acknowledgements({plan_key(A1, 1): first})
    assert crm.acknowledgements()[plan_key(A1, 1)] == first
    done = Acknowledgements(NOW + timedelta(minutes=12), in_sla=1, late=0, pending=0)
    crm.write_acknowledgements({plan_key(A1, 1): done})
    stored = crm.acknowledgements()
    assert stored[plan_key(A1, 1)] == done
    assert stored.get(plan_key(A2, 1), Acknowledgements()) == Acknowledgements()  # left alone
    # Saving the plan again (the next event) leaves the fields as the sampler wrote them.
    assert crm.apply([_change("evt-3", SavePlan(_plan(revision=2)))]) == [None]
    assert crm.acknowledgements()[plan_key(A1, 1)] == done


def test_one_batch_writes_an_event_given_twice_once_and_sees_its_own_earlier_writes(crm: Crm) -> None:
    checkin = ScheduleCheckIn(key=f"{A1}#1:checkin:1", plan_key=f"{A1}#1", account_id=A1, slot=1,
                              start_at=NOW + timedelta(days=7), duration_minutes=30,
                              subject="Check-in", description="", owner_id=OWNER_ID,
                              provenance=_prov("evt-1"))
    booked = _change("evt-1", _task(A1, "evt-1"), checkin, SavePlan(_plan()))
    cancel = SetCheckInStatus(f"{A1}#1", A1, (checkin.key,), "cancelled", "closed", _prov("evt-2"))
    later = _change("evt-3", _task(A2, "evt-3"), SavePlan(_plan(A2)), account=A2)
    assert crm.apply([booked, booked, _change("evt-2", cancel), later]) == [None] * 4
    records = crm.records()
    assert [(r.kind, r.key) for r in records] == [
        ("plan", f"{A1}#1"), ("plan", f"{A2}#1"),
        ("task", f"{A1}#1:discovery"), ("checkin", checkin.key), ("task", f"{A2}#1:discovery")]
    assert records[3].fields["subject"] == "Cancelled: Check-in"
    assert crm.load([A1, A2], ["evt-1", "evt-2", "evt-3"]).processed == {"evt-1", "evt-2", "evt-3"}
