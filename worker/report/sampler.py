"""Samples the method's figures from the CRM into Prometheus gauges, for an existing Grafana, and
keeps each plan's acknowledgement fields up to date from its tasks (``worker.report.rollups``).

Its own CRM connection and thread, every few minutes (each sample reads every plan and task, so
it is not per scrape); a failed sample is skipped and the gauges keep their last values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from handlers.errors import WinbackError
from handlers.figures import Figures, compute_figures
from worker.crm.port import Crm
from worker.metrics import Metrics
from worker.report.rollups import sync_acknowledgements
from worker.report.source import read_all
from worker.sampling import PeriodicSampler


class FigureSampler(PeriodicSampler):
    """Every ``interval`` seconds: ``winback_plans{state}``, ``winback_complaint_acks{verdict}``
    and the plans' acknowledgement fields."""

    skipped = (WinbackError, ValueError)  # CRM away, or a plan it cannot read

    def __init__(self, open_crm: Callable[[], Crm], metrics: Metrics, interval: float = 300.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._open_crm = open_crm
        self._metrics = metrics
        self._clock = clock
        super().__init__("winback-figures", interval)

    def sample(self) -> None:
        now = self._clock()
        crm = self._open_crm()
        try:
            plans, tasks = read_all(crm)
            written = sync_acknowledgements(crm, plans, tasks, now)
        finally:
            crm.close()
        if written:
            self._log.info("acknowledgements_written", plans=len(written))
        rows = compute_figures(plans, tasks, now)
        figures = rows[0] if rows else Figures(group="all")  # no plans yet: every count is 0
        for state, count in (("opened", figures.opened), ("won", figures.won),
                             ("lost", figures.lost),
                             ("open", figures.opened - figures.won - figures.lost)):
            self._metrics.plans.labels(state=state).set(count)
        for verdict, count in (("in_sla", figures.sla_met), ("late", figures.sla_late),
                               ("not_yet", figures.sla_not_yet)):
            self._metrics.complaint_acks.labels(verdict=verdict).set(count)
