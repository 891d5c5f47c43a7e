"""The consumer against a real RabbitMQ: parking, retries, shutdown and heartbeats."""

from __future__ import annotations

import json
from pathlib import Path

from handlers.errors import CrmUnavailableError
from tests.integration.broker import Names, message_count, publish, take_all, work_count
from tests.integration.harness import (
    FlakyCrm,
    SlowCrm,
    lapsed,
    make_consumer,
    make_settings,
    running,
)
from tests.waiting import wait_until
from worker.crm.local import LocalCrm


def _tasks(crm: object) -> list[str]:
    return sorted(r.key for r in crm.records() if r.kind == "task")  # type: ignore[attr-defined]


def test_malformed_invalid_and_unknown_events_are_parked_with_reason_while_consuming_goes_on(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path)
    consumer, crm, _ = make_consumer(settings)
    with running(consumer):
        wait_until(consumer.is_consuming, what="consumer to start")
        publish(names, b"{this is not json", routing_key="crm.customer.lapsed")
        invalid = lapsed("evt-bad", "ACC-1")
        del invalid["data"]["account_name"]
        publish(names, invalid)
        unknown = lapsed("evt-unknown", "ACC-2") | {"type": "crm.order.placed"}
        publish(names, json.dumps(unknown).encode(), routing_key="crm.customer.lapsed")
        publish(names, lapsed("evt-good", "ACC-3"))
        wait_until(lambda: _tasks(crm) == ["ACC-3:task:evt-good"], what="the valid event")
        wait_until(lambda: message_count(settings.parking_queue) == 3, what="three parked messages")
    parked = take_all(settings.parking_queue)
    reasons = {h["x-winback-error"]: h["x-winback-reason"] for h, _ in parked}
    assert reasons.keys() == {"InvalidEventError", "UnknownEventTypeError"}
    assert sum(h["x-winback-error"] == "InvalidEventError" for h, _ in parked) == 2
    assert "crm.order.placed" in reasons["UnknownEventTypeError"]
    texts = sorted(h["x-winback-reason"] for h, _ in parked)
    assert any("data.account_name: Field required" in t for t in texts)
    assert any("body is not JSON" in t for t in texts)
    assert {b for _, b in parked} >= {b"{this is not json"}, "the original body is kept"
    assert work_count(settings) == 0


def test_transient_crm_failure_is_retried_through_the_broker_and_written_once(
    names: Names, tmp_path: Path
) -> None:
    settings = make_settings(names, tmp_path)
    flaky = FlakyCrm(LocalCrm(settings.local_crm_path), failures=2)
    consumer, crm, metrics = make_consumer(settings, crm=flaky)
    with running(consumer):
        publish(names, lapsed("evt-1", "ACC-1"))
        wait_until(lambda: _tasks(crm) == ["ACC-1:task:evt-1"], what="the retried event")
        assert consumer.wait_settled(30), "settlement"
    assert flaky.calls == 3
    assert metrics.events.labels(outcome="retried")._value.get() == 2
    assert message_count(settings.parking_queue) == 0


def test_transient_failure_is_parked_after_the_last_retry(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path, retry_delays=(0.1, 0.1))
    flaky = FlakyCrm(LocalCrm(settings.local_crm_path), failures=99)
    consumer, crm, _ = make_consumer(settings, crm=flaky)
    with running(consumer):
        publish(names, lapsed("evt-1", "ACC-1"))
        wait_until(lambda: message_count(settings.parking_queue) == 1, what="the parked event")
    ((headers, _),) = take_all(settings.parking_queue)
    assert headers["x-winback-error"] == CrmUnavailableError.__name__
    assert headers["x-winback-reason"].startswith("gave up after 2 retries")
    assert headers["x-winback-attempts"] == 2
    assert _tasks(crm) == []


def test_stop_with_messages_in_flight_finishes_them_and_loses_none(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path, batch_size=5, prefetch=10)
    slow = SlowCrm(LocalCrm(settings.local_crm_path), delay=0.5)
    consumer, _, _ = make_consumer(settings, crm=slow)
    for i in range(40):
        publish(names, lapsed(f"evt-{i}", f"ACC-{i}"))
    with running(consumer):
        wait_until(slow.started.is_set, what="a batch in flight")
        consumer.stop()  # what SIGTERM does
    done = len(_tasks(slow))
    assert done >= 1, "the in-flight batch is finished, not dropped"
    # The connection's close returns the rest; a quorum queue counts them back a moment later.
    wait_until(lambda: done + work_count(settings) == 40, what="what was not finished back in the queue")

    rerun, crm, _ = make_consumer(settings)
    rerun.run(exit_when_idle=0.5)
    assert _tasks(crm) == sorted(f"ACC-{i}:task:evt-{i}" for i in range(40))


def test_crm_call_slower_than_two_heartbeats_keeps_the_connection(names: Names, tmp_path: Path) -> None:
    settings = make_settings(names, tmp_path, heartbeat=1)
    slow = SlowCrm(LocalCrm(settings.local_crm_path), delay=3.5)
    consumer, crm, metrics = make_consumer(settings, crm=slow)
    with running(consumer):
        publish(names, lapsed("evt-1", "ACC-1"))
        wait_until(lambda: _tasks(crm) == ["ACC-1:task:evt-1"], timeout=30, what="the slow write")
        assert consumer.wait_settled(30), "the ack"
        assert consumer.is_consuming()
    assert consumer.connections_opened == 1
    assert metrics.broker_reconnects._value.get() == 0
    assert work_count(settings) == 0, "acked once, not redelivered"
