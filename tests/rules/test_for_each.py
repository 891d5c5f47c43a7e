"""for_each: one task per item where the realiser honours it, and an error where it would not."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from handlers.registry import handle
from handlers.rules.errors import RulesInvalidError
from handlers.rules.model import RuleFile
from handlers.rules.ruleset import RuleSet
from handlers.templates import Templates
from tests.rules.snippets import FILE, FOLLOW_UP_WITH_FOR_EACH, HEAD, load, problems
from tests.unit.rulesets import lapsed, later, meeting, tasks


def test_for_each_on_a_discovery_task_is_an_error_at_the_for_each_key() -> None:
    found = problems("""\
  - id: ask-why
    on: meeting.held
    then:
      - create_task:
          kind: discovery
          subject: "Ask {{ account_name }} why they left"
          for_each: added_experiences
""")
    assert found == [f"{FILE}:14:11: for_each has no effect on a discovery task: one discovery is "
                     "written per plan — remove it, or give the task another kind for one task "
                     "per item"]


def test_for_each_on_a_close_plan_follow_up_is_an_error_at_the_for_each_key() -> None:
    found = problems(FOLLOW_UP_WITH_FOR_EACH)
    assert found == [f"{FILE}:17:13: for_each has no effect on a close_plan follow_up: one "
                     "follow-up task is written when the plan closes — remove it"]


def test_a_discovery_follow_up_with_for_each_is_one_problem_about_the_follow_up() -> None:
    found = problems("""\
  - id: lost
    on: meeting.held
    then:
      - close_plan:
          outcome: lost
          reason: "They stayed away"
          follow_up: {kind: discovery, subject: "Ask why", for_each: feedback}
""")
    assert found == [f"{FILE}:14:60: for_each has no effect on a close_plan follow_up: one "
                     "follow-up task is written when the plan closes — remove it"]


def test_an_ignored_for_each_is_reported_once_not_also_for_its_unknown_variable() -> None:
    found = problems("""\
  - id: ask-why
    on: customer.lapsed
    then:
      - create_task: {kind: discovery, subject: "Ask why", for_each: no_such_list}
""")
    assert found == [f"{FILE}:11:60: for_each has no effect on a discovery task: one discovery is "
                     "written per plan — remove it, or give the task another kind for one task "
                     "per item"]


def test_an_ignored_for_each_is_reported_even_when_the_event_type_is_misspelt() -> None:
    found = problems("""\
  - id: ask-why
    on: meeting.hel
    then:
      - create_task: {kind: discovery, subject: "Ask why", for_each: feedback}
""")
    assert [p.split(": ", 1)[0] for p in found] == [f"{FILE}:9:9", f"{FILE}:11:60"]
    assert "for_each has no effect on a discovery task" in found[1]


def test_for_each_on_a_create_task_of_another_kind_is_accepted() -> None:
    rules = load("""\
  - id: experiences
    on: meeting.held
    then:
      - create_task: {kind: experience, subject: "Make it happen: {{ item }}", for_each: feedback}
""")
    assert [r.id for r in rules.file.rules] == ["experiences"]


# --- the check and the realiser agree, placement by placement ----------------------------------

FEEDBACK = ["faster replies", "a named contact"]
# Each place a for_each can be written, and how many tasks the realiser writes there for a meeting
# with two feedback items.
PLACES: list[tuple[str, int]] = [
    ("create_task: {kind: experience, subject: s, for_each: feedback}", len(FEEDBACK)),
    ("create_task: {kind: discovery, subject: s, for_each: feedback}", 1),
    ("close_plan: {outcome: won, reason: r, follow_up: {kind: follow_up, subject: s, "
     "for_each: feedback}}", 1),
]


def _rule(action: str) -> str:
    return f"  - id: x\n    on: meeting.held\n    then:\n      - {action}\n"


def _tasks_written(action: str) -> int:
    # Straight from the model, past the checks: what the realiser does with the for_each.
    data = YAML(typ="safe").load(HEAD + _rule(action))
    ruleset = RuleSet(RuleFile.model_validate(data), Templates({}), FILE)
    opened = handle(lapsed(), None, ruleset, later(lapsed()))
    held = meeting("m1", "2026-11-06T11:00", feedback=FEEDBACK)
    return len(tasks(handle(held, opened.plan, ruleset, later(held))))


def _checked(action: str) -> list[str]:
    try:
        load(_rule(action))
    except RulesInvalidError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(("action", "count"), PLACES, ids=[p[0] for p in PLACES])
def test_for_each_is_an_error_exactly_where_the_realiser_writes_one_task_whatever_the_items(
    action: str, count: int
) -> None:
    assert _tasks_written(action) == count
    found = _checked(action)
    assert len(found) == (1 if count == 1 else 0)
    assert all("for_each has no effect on" in p for p in found)
