"""Timers on the real broker, both CRMs: deadlines of seconds that escalate, nudge, or stay quiet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import pytest

from handlers.registry import handle
from handlers.rules.ruleset import RuleSet
from tests.adapters import complete_task
from tests.integration.broker import Names, channel, message_count, publish, work_count
from tests.integration.harness import lapsed, make_consumer, make_settings, running
from tests.sfserver.cast import MANAGER, OWNER, WON
from tests.waiting import wait_until
from worker.crm.port import Crm, Record
from worker.metrics import Metrics
from worker.rules_source import load_rules
from worker.settings import Settings
from worker.topology import Topology, account_headers

ROOT = Path(__file__).parents[2]
WAIT = 2  # seconds: every deadline of the test rules
RULES = f"""
version: "timers-test"
settings:
  owners: {{default: account_owner, managers: account_owner_manager}}
  checkin_cadence_days: [7, 30]
rules:
  - id: acknowledge
    on: complaint.logged
    then:
      - create_task:
          kind: acknowledgement
          subject: "Acknowledge the complaint from {{{{ account_name }}}}"
          due_in: {{seconds: {WAIT}}}
          priority: high
          unless_done:
            within: {{seconds: {WAIT}}}
            then:
              - escalate:
                  to: {{queue: managers}}
                  subject: "Not acknowledged: {{{{ severity }}}} complaint from {{{{ account_name }}}}"
            again:
              after: {{seconds: {WAIT}}}
              when: {{severity: {{in: [high, critical]}}}}
  - id: declined
    on: meeting.held
    when: {{outcome: {{equals: declined}}}}
    then:
      - close_plan: {{outcome: lost, reason: "declined"}}
    stop: true
  - id: next-checkin
    on: meeting.held
    then:
      - schedule_checkins:
          subject: "Check-in {{{{ checkin.slot }}}}"
          unless_held:
            within: {{seconds: {WAIT}}}
            then:
              - create_task:
                  kind: follow_up
                  subject: "Hold the check-in with {{{{ account_name }}}} or reschedule it"
                  due_in: {{days: 1}}
            close_after: 1
"""


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return load_rules(path, ROOT / "config" / "templates")


def _event(event_id: str, event_type: str, account: str, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "crm/test", "type": event_type,
            "data": {"account_id": account, "account_name": f"Account {account}",
                     "owner_id": OWNER} | data}


def complaint(event_id: str, account: str, at: datetime, severity: str = "low") -> dict[str, Any]:
    return _event(event_id, "crm.complaint.logged", account, complaint_id=f"C-{event_id}",
                  logged_at=at.isoformat(), severity=severity, summary="The portal lost my order")


def meeting(event_id: str, account: str, at: datetime, kind: str, **data: Any) -> dict[str, Any]:
    return _event(event_id, "crm.meeting.held", account, meeting_id=f"M-{event_id}",
                  held_at=at.isoformat(), kind=kind, **data)


def _tasks(crm: Crm, kind: str) -> list[Record]:
    return [r for r in crm.records() if r.kind == "task" and r.fields["kind"] == kind]


def _plan(crm: Crm, account: str) -> dict[str, Any]:
    (plan,) = [r.fields for r in crm.records(account) if r.kind == "plan"]
    return plan


def _timer_statuses(crm: Crm, account: str) -> list[str]:
    return [t["status"] for t in _plan(crm, account)["timers"]]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def worker(settings: Settings, crm: Crm, rules: RuleSet) -> Iterator[Metrics]:
    consumer, _, metrics = make_consumer(settings, crm=crm, handle=handle, rules=rules)
    with running(consumer):
        yield metrics


def _settings(names: Names, tmp_path: Path) -> Settings:
    return make_settings(names, tmp_path, batch_wait_ms=5)


def test_an_unacknowledged_complaint_is_escalated_within_5_s_of_its_deadline_then_again(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    logged = datetime.now(UTC)
    deadline = logged + timedelta(seconds=WAIT)
    publish(names, complaint("c1", WON, logged, severity="high"))
    with worker(settings, crm, rules) as metrics:
        # The first escalation must appear before five seconds past the deadline.
        budget = (deadline - datetime.now(UTC)).total_seconds() + 5
        (first,) = wait_until(lambda: _tasks(crm, "escalation"), timeout=budget,
                              what="the escalation within 5 s of the deadline")
        escalations = wait_until(lambda: len(_tasks(crm, "escalation")) == 2 and _tasks(crm, "escalation"),
                                 timeout=WAIT + 5, what="the second escalation (high severity)")
    assert first.fields["subject"] == f"Not acknowledged: high complaint from Account {WON}"
    # The account owner's manager; the embedded CRM knows no managers.
    assert first.fields["owner_id"] == (MANAGER if crm.name == "salesforce" else None)
    assert [e.key for e in escalations] == [f"{WON}#1:acknowledge:C-c1:late1",
                                            f"{WON}#1:acknowledge:C-c1:late2"]
    plan = _plan(crm, WON)
    assert [(b["kind"], b["severity"], b["round"]) for b in plan["breaches"]] == [
        ("sla", "high", 1), ("sla", "high", 2)]
    assert _timer_statuses(crm, WON) == ["acted", "acted"]
    assert _value(metrics, "winback_sla_breaches_total", severity="high") == 2
    assert _value(metrics, "winback_timers_scheduled_total", kind="unless_done") == 2
    assert _value(metrics, "winback_timers_fired_total", outcome="acted") == 2


def test_a_complaint_acknowledged_in_time_is_not_escalated(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, complaint("c1", WON, datetime.now(UTC), severity="critical"))
    with worker(settings, crm, rules) as metrics:
        (ack,) = wait_until(lambda: _tasks(crm, "acknowledgement"), what="the acknowledgement task")
        complete_task(crm, ack.key, datetime.now(UTC))  # the owner acknowledges in time
        wait_until(lambda: _value(metrics, "winback_timers_fired_total", outcome="met") == 1,
                   timeout=WAIT + 5, what="the timer to fire and find the task closed")
    assert _tasks(crm, "escalation") == []
    assert _timer_statuses(crm, WON) == ["met"]
    assert _plan(crm, WON)["breaches"] == []
    assert _value(metrics, "winback_sla_breaches_total", severity="critical") == 0


def test_a_worker_restarted_while_the_timer_waits_still_escalates_once(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, complaint("c1", WON, datetime.now(UTC)))
    with worker(settings, crm, rules):
        wait_until(lambda: _tasks(crm, "acknowledgement"), what="the acknowledgement task")
    assert _timer_statuses(crm, WON) == ["pending"], "stopped before the deadline"
    (timer_event,) = [json.loads(json.dumps(p["timers"])) for p in [_plan(crm, WON)]]
    with worker(settings, crm, rules) as metrics:
        wait_until(lambda: _timer_statuses(crm, WON) == ["acted"], timeout=WAIT + 5,
                   what="the timer to act after the restart")
        wait_until(lambda: work_count(settings) == 0, what="the work queue to drain")
    assert len(_tasks(crm, "escalation")) == 1
    assert timer_event[0]["key"] == f"{WON}#1:acknowledge:C-c1:timer"
    assert _value(metrics, "winback_timers_fired_total", outcome="acted") == 1


def _into_work_queue(settings: Settings, payload: dict[str, Any]) -> None:
    """A copy straight into the account's work queue, as a broker gives a message again after a
    lost ack."""
    with channel() as ch:
        ch.confirm_delivery()
        ch.basic_publish(Topology.from_settings(settings).hash_exchange, "winback.timer.due",
                         json.dumps(payload).encode(),
                         pika.BasicProperties(delivery_mode=2, headers=account_headers(payload)))


def _waiting(settings: Settings) -> int:
    """Messages in the work queues and every delay tier."""
    tiers = Topology.from_settings(settings).timer_queues
    return work_count(settings) + sum(message_count(q) for q in tiers)


def test_the_same_timer_delivered_three_times_escalates_once(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, complaint("c1", WON, datetime.now(UTC)))  # low severity: one round only
    with worker(settings, crm, rules):
        wait_until(lambda: _tasks(crm, "acknowledgement"), what="the acknowledgement task")
    # The timer exactly as the worker sent it, from the ledger's outbox; its own copy waits in a tier.
    (timer,) = [o for o in crm.load({WON}, {"c1"}).outbox["c1"] if o.due_at is not None]
    _into_work_queue(settings, timer.payload)  # early: it waits again, and comes due beside the original
    with worker(settings, crm, rules) as metrics:
        wait_until(lambda: _timer_statuses(crm, WON) == ["acted"], timeout=WAIT + 5,
                   what="the timer to act")
        _into_work_queue(settings, timer.payload)  # late: after the timer acted
        wait_until(lambda: _value(metrics, "winback_timers_fired_total", outcome="duplicate") == 2,
                   timeout=WAIT + 5, what="both extra copies to be found in the ledger")
    assert _waiting(settings) == 0, "no copy left waiting"
    (escalation,) = _tasks(crm, "escalation")
    assert escalation.key == f"{WON}#1:acknowledge:C-c1:late1"
    assert [b["round"] for b in _plan(crm, WON)["breaches"]] == [1]
    assert _value(metrics, "winback_timers_fired_total", outcome="acted") == 1
    assert _value(metrics, "winback_sla_breaches_total", severity="low") == 1


def test_a_plan_closed_before_the_deadline_escalates_nothing(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    now = datetime.now(UTC)
    publish(names, complaint("c1", WON, now, severity="high"))
    publish(names, meeting("m1", WON, now, "catch_up", outcome="declined"))
    with worker(settings, crm, rules) as metrics:
        wait_until(lambda: _value(metrics, "winback_timers_fired_total", outcome="skipped") == 1,
                   timeout=WAIT + 5, what="the timer to fire on the closed plan")
    assert _plan(crm, WON)["stage"] == "lost"
    assert _timer_statuses(crm, WON) == ["cancelled"]
    assert _tasks(crm, "escalation") == []


def _exit_interview_a_week_ago(account: str) -> dict[str, Any]:
    # Check-in 1 is 7 days after the first meeting: a meeting 7 days ago, less a few seconds,
    # puts it just ahead, so its grace ends WAIT seconds after that.
    held = datetime.now(UTC) - timedelta(days=7) + timedelta(seconds=1)
    return meeting("m1", account, held, "exit_interview", sentiment=0)


def test_a_missed_checkin_gets_one_nudge_and_closes_the_plan_after_the_configured_misses(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, lapsed("l1", WON, owner_id=OWNER))
    publish(names, _exit_interview_a_week_ago(WON))
    with worker(settings, crm, rules) as metrics:
        wait_until(lambda: any(r.kind == "plan" and r.fields["stage"] == "lost"
                               for r in crm.records(WON)), timeout=WAIT + 8,
                   what="the missed check-in to close the plan")
        wait_until(lambda: work_count(settings) == 0, what="the work queue to drain")
    (nudge,) = _tasks(crm, "follow_up")
    assert nudge.fields["subject"] == f"Hold the check-in with Account {WON} or reschedule it"
    assert nudge.fields["owner_id"] == OWNER
    plan = _plan(crm, WON)
    assert plan["missed_checkins"] == 1
    assert plan["closing_reason"] == "1 check-in missed: moving on"
    assert [b["kind"] for b in plan["breaches"]] == ["checkin"]
    assert _value(metrics, "winback_timers_fired_total", outcome="acted") == 1


def test_a_checkin_held_in_time_gets_no_nudge(
    names: Names, tmp_path: Path, crm: Crm, rules: RuleSet
) -> None:
    settings = _settings(names, tmp_path)
    publish(names, lapsed("l1", WON, owner_id=OWNER))
    publish(names, _exit_interview_a_week_ago(WON))
    with worker(settings, crm, rules) as metrics:
        wait_until(lambda: [r for r in crm.records(WON) if r.kind == "checkin"],
                   what="check-in 1 to be scheduled")
        publish(names, meeting("m2", WON, datetime.now(UTC), "check_in", sentiment=1))
        wait_until(lambda: _value(metrics, "winback_timers_fired_total", outcome="met") == 1,
                   timeout=WAIT + 8, what="the check-in timer to find it held")
    assert _tasks(crm, "follow_up") == []
    assert _plan(crm, WON)["missed_checkins"] == 0
