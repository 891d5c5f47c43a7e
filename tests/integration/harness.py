"""Run the real consumer in-process against the real broker, with CRM fakes that are slow or flaky."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handlers.actions import CreateTask, EventChange, Provenance
from handlers.errors import CrmUnavailableError, WinbackError
from handlers.events import Event, StepState
from handlers.figures import Acknowledgements
from handlers.outcome import Outcome
from handlers.plan import Plan
from handlers.rules.model import RuleFile
from handlers.rules.ruleset import RuleSet
from handlers.templates import Templates
from tests.integration.broker import Names, channel
from worker.app import consume
from worker.crm.local import LocalCrm
from worker.crm.port import Crm, Record, Snapshot
from worker.dispatch import Handle, Processor
from worker.metrics import Metrics
from worker.policy import RetryPolicy
from worker.session import AmqpSession
from worker.settings import Settings, load_settings
from worker.stop import StopToken
from worker.topology import Topology

EMPTY_RULES = RuleSet(RuleFile(version="test", rules=[]), Templates())


def one_task(event: Event, plan: Plan | None, rules: RuleSet, now: datetime) -> Outcome:
    """A stand-in handler for consumer mechanics: one task per event, keyed by the event."""
    task = CreateTask(
        key=f"{event.account_id}:task:{event.id}", plan_key=f"{event.account_id}#1",
        account_id=event.account_id, kind="note", subject=f"event {event.id}", description="",
        owner_id=None, due_at=now, priority="normal",
        provenance=Provenance(event.id, "test", rules.version),
    )
    return Outcome(actions=(task,), plan=plan)


class SlowCrm:
    """The local CRM, but every ``apply`` takes ``delay`` seconds; ``started`` is set on entry."""

    def __init__(self, inner: Crm, delay: float) -> None:
        self.inner, self.delay, self.name = inner, delay, "slow"
        self.started = threading.Event()
        self._pause = threading.Event()

    def check(self) -> None:
        self.inner.check()

    def load(self, account_ids: Collection[str], event_ids: Collection[str]) -> Snapshot:
        return self.inner.load(account_ids, event_ids)

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        self.started.set()
        self._pause.wait(self.delay)  # a slow CRM call; nothing ever sets _pause
        return self.inner.apply(changes)

    def records(self, account_id: str | None = None) -> list[Record]:
        return self.inner.records(account_id)

    def step_states(self, keys: Mapping[str, str]) -> dict[str, StepState]:
        return self.inner.step_states(keys)

    def acknowledgements(self) -> dict[str, Acknowledgements]:
        return self.inner.acknowledgements()

    def write_acknowledgements(self, values: Mapping[str, Acknowledgements]) -> None:
        self.inner.write_acknowledgements(values)

    def close(self) -> None:
        self.inner.close()


class FlakyCrm(SlowCrm):
    """Fails the first ``failures`` applies with a transient error, then works."""

    def __init__(self, inner: Crm, failures: int) -> None:
        super().__init__(inner, 0)
        self.failures = failures
        self.calls = 0

    def apply(self, changes: Sequence[EventChange]) -> list[WinbackError | None]:
        self.calls += 1
        if self.calls <= self.failures:
            raise CrmUnavailableError("CRM is down for maintenance")
        return self.inner.apply(changes)


def make_settings(names: Names, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = names.settings | {
        "local_crm_path": tmp / "crm.sqlite3", "retry_delays": (0.2, 0.2, 0.2),
        "batch_wait_ms": 20, "grace_period": 10.0, "log_format": "json",
    }
    settings = load_settings(**(values | overrides))
    with channel() as ch:  # declared up front so tests may publish before the consumer starts
        Topology.from_settings(settings).declare(ch)
    return settings


def make_consumer(
    settings: Settings, crm: Crm | None = None, handle: Handle = one_task,
    rules: RuleSet = EMPTY_RULES,
) -> tuple[AmqpSession, Crm, Metrics]:
    crm = crm or LocalCrm(settings.local_crm_path)
    metrics = Metrics()
    processor = Processor(crm, lambda: rules, handle, lambda: datetime.now(UTC),
                          RetryPolicy(settings.retry_delays))
    return consume(settings, processor, metrics, StopToken()), crm, metrics


@contextmanager
def running(consumer: AmqpSession) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=consumer.run, name="test-consumer")
    thread.start()
    try:
        yield thread
    finally:
        consumer.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "consumer did not stop within 30 s"


def lapsed(event_id: str, account_id: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": event_id, "source": "crm/test", "type": "crm.customer.lapsed",
        "time": "2026-11-22T10:00:00Z", "datacontenttype": "application/json",
        "data": {"account_id": account_id, "account_name": f"Account {account_id}",
                 "lapsed_at": "2026-11-20", "owner_id": "USR-1", "annual_value": 50000} | data,
    }
