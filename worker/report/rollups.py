"""Each plan's acknowledgement fields, copied from its acknowledgement tasks onto the plan record.

A Salesforce report cannot join plans to their tasks (tasks hang off the account), and a person
completing a task is no event the worker hears of. So the figure sampler, which reads every plan
and task anyway, also computes each plan's ``Acknowledgements`` (latest completion time, and the
tasks in the SLA, late and pending) and writes those that differ from what the plan holds: the
roll-up an admin would schedule. ``winback report --sync`` does the same at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handlers.figures import Acknowledgements, TaskView, acknowledgements
from handlers.plan import Plan
from worker.crm.port import Crm

NONE = Acknowledgements()


def sync_acknowledgements(crm: Crm, plans: Sequence[Plan], tasks: Sequence[TaskView],
                          now: datetime) -> dict[str, Acknowledgements]:
    """Write each plan's acknowledgement fields that changed; returns what was written."""
    stored = crm.acknowledgements()
    changed = {key: acks for key, acks in acknowledgements(plans, tasks, now).items()
               if stored.get(key, NONE) != acks}
    if changed:
        crm.write_acknowledgements(changed)
    return changed
