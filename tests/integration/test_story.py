"""The method end to end: events through RabbitMQ, the real handlers and default rules, the CRM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.registry import handle
from tests.adapters import ADAPTERS, open_crm
from tests.integration.broker import Names, channel, message_count, publish, take_all, take_all_routed
from tests.integration.harness import make_consumer, make_settings, running
from tests.integration.story import DECLINED, LOST, STORY, WON, summary
from tests.waiting import wait_until
from worker.crm.port import Crm
from worker.rules_source import load_rules

RULES = Path(__file__).parents[2] / "config" / "rules.yaml"

EXPECTED_WON = [
    ("plan", "won", "ACC-WON#1", "won", "drafted", ""),
    ("task", "discovery", "ACC-WON#1:discovery", "USR-A", "open", "story-01"),
    ("task", "prompt", "ACC-WON#1:write-it-down.1", "USR-A", "open", "story-01"),
    ("task", "prompt", "ACC-WON#1:write-it-down.2", "USR-A", "open", "story-01"),
    ("task", "prompt", "ACC-WON#1:write-it-down.3", "USR-A", "open", "story-01"),
    ("task", "offer", "ACC-WON#1:offer-guaranteed-refund-to-high-value", "USR-A", "open", "story-01"),
    ("task", "acknowledgement", "ACC-WON#1:acknowledge-within-sla:CMP-1", "USR-A", "open", "story-02"),
    ("task", "escalation", "ACC-WON#1:escalate-severe-complaints:CMP-1", "service-managers", "open",
     "story-02"),
    ("email_draft", "apology", "ACC-WON#1:apology", "USR-A", "draft", "story-02"),
    ("task", "review", "ACC-WON#1:apology:review", "USR-A", "open", "story-02"),
    ("task", "acknowledgement", "ACC-WON#1:acknowledge-within-sla:CMP-2", "USR-A", "open", "story-03"),
    ("task", "note", "ACC-WON#1:apologise-once:CMP-2:no-second-apology", "USR-A", "open", "story-03"),
    ("task", "experience", "ACC-WON#1:create-new-experiences:MTG-4:1", "USR-A", "open", "story-04"),
    ("task", "feedback", "ACC-WON#1:feedback-to-marketing-and-product.1:MTG-4",
     "marketing-product-feedback", "open", "story-04"),
    ("checkin", "checkin", "ACC-WON#1:checkin:1", "USR-A", "done", "story-04"),
    ("checkin", "checkin", "ACC-WON#1:checkin:2", "USR-A", "done", "story-05"),
    ("checkin", "checkin", "ACC-WON#1:checkin:3", "USR-A", "done", "story-06"),
    ("task", "follow_up", "ACC-WON#1:follow-up:won", "USR-A", "open", "story-07"),
]
EXPECTED_LOST = [
    ("plan", "lost", "ACC-LOST#1", "lost", "none", ""),
    ("task", "discovery", "ACC-LOST#1:discovery", "USR-A", "open", "story-08"),
    ("task", "prompt", "ACC-LOST#1:write-it-down.1", "USR-A", "open", "story-08"),
    ("task", "prompt", "ACC-LOST#1:write-it-down.2", "USR-A", "open", "story-08"),
    ("task", "prompt", "ACC-LOST#1:write-it-down.3", "USR-A", "open", "story-08"),
    ("task", "offer", "ACC-LOST#1:offer-guaranteed-refund-to-high-value", "USR-A", "open", "story-08"),
    ("checkin", "checkin", "ACC-LOST#1:checkin:1", "USR-A", "done", "story-09"),
    ("checkin", "checkin", "ACC-LOST#1:checkin:2", "USR-A", "done", "story-10"),
    ("checkin", "checkin", "ACC-LOST#1:checkin:3", "USR-A", "done", "story-11"),
]
EXPECTED_DECLINED = [
    ("plan", "lost", "ACC-DECLINED#1", "lost", "none", ""),
    ("task", "survey", "ACC-DECLINED#1:survey-low-value-lapses", "winback-survey-queue", "open",
     "story-14"),
    ("task", "prompt", "ACC-DECLINED#1:write-it-down.1", "USR-A", "open", "story-14"),
    ("task", "prompt", "ACC-DECLINED#1:write-it-down.2", "USR-A", "open", "story-14"),
    ("task", "prompt", "ACC-DECLINED#1:write-it-down.3", "USR-A", "open", "story-14"),
    ("task", "offer", "ACC-DECLINED#1:offer-free-trial", "USR-A", "open", "story-14"),
    ("checkin", "checkin", "ACC-DECLINED#1:checkin:1", "USR-A", "cancelled", "story-15"),
]


def run_story(names: Names, crm: Crm, tmp_path: Path) -> list[tuple[str, dict[str, object]]]:
    """Publish the story, run the worker until it has settled every event; the feedback events."""
    settings = make_settings(names, tmp_path)
    feedback_queue = f"{names.prefix}.feedback-listener"
    with channel() as ch:
        ch.queue_declare(feedback_queue, exclusive=False, auto_delete=False)
        ch.queue_bind(feedback_queue, settings.exchange, routing_key="winback.feedback")
    for event in STORY:
        publish(names, event)
    consumer, _, _ = make_consumer(settings, crm=crm, handle=handle, rules=load_rules(RULES))
    with running(consumer):
        wait_until(lambda: message_count(settings.queue) == 0 and len(crm.records()) > 0,
                   timeout=60, what="the story to be handled")
        assert consumer.wait_settled(60), "the story settled"
    assert message_count(settings.parking_queue) == 0, take_all(settings.parking_queue)
    feedback = [(key, json.loads(body)) for key, _, body in take_all_routed(feedback_queue)]
    with channel() as ch:
        ch.queue_delete(feedback_queue)
    return feedback


def assert_story_records(crm: Crm) -> None:
    # The same records whichever CRM; adapters may list them in their own order.
    assert sorted(summary(crm.records(WON))) == sorted(EXPECTED_WON)
    assert sorted(summary(crm.records(LOST))) == sorted(EXPECTED_LOST)
    assert sorted(summary(crm.records(DECLINED))) == sorted(EXPECTED_DECLINED)
    won_plan = next(r for r in crm.records(WON) if r.kind == "plan").fields
    assert [m["movement"] for m in won_plan["meetings"]] == [None, 0, 2, 1]
    assert [s["action"] for s in won_plan["suppressed"]] == ["apology"]
    lost_plan = next(r for r in crm.records(LOST) if r.kind == "plan").fields
    assert lost_plan["closing_reason"] == "no positive movement in 3 check-ins in a row"
    apology = next(r for r in crm.records(WON) if r.kind == "email_draft").fields
    assert "We waited three weeks for a reply to ticket 4411." in apology["body_text"]


@pytest.fixture(params=ADAPTERS)
def story_crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    """The same story against the embedded CRM and, over HTTPS, the Salesforce adapter."""
    with open_crm(request.param, tmp_path) as adapter:
        yield adapter


def test_the_method_plays_out_for_a_won_a_lost_and_a_declined_account(
    names: Names, story_crm: Crm, tmp_path: Path
) -> None:
    feedback = run_story(names, story_crm, tmp_path)
    assert_story_records(story_crm)
    assert len(feedback) == 1
    routing, payload = feedback[0]
    assert routing == "winback.feedback"
    assert payload["account_id"] == WON
