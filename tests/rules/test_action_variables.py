"""Per-action variables (due_at, offer, item, checkin): known to the lint exactly where they are set."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from ruamel.yaml import YAML

from handlers.context import PER_ACTION, TEXT_VARIABLES
from handlers.errors import RuleError
from handlers.registry import handle
from handlers.rules.errors import RulesInvalidError
from handlers.rules.loader import parse_rules
from handlers.rules.model import RuleFile
from handlers.rules.ruleset import RuleSet
from handlers.templates import Templates
from tests.rules.snippets import FILE, HEAD, load, problems
from tests.unit.rulesets import lapsed, later, meeting

TEMPLATES_DIR = "config/templates"


def _rule(action: str, on: str = "customer.lapsed") -> str:
    return f"  - id: x\n    on: {on}\n    then:\n      - {action}\n"


def test_the_offer_in_a_plain_task_subject_is_an_error_at_the_subject_saying_where_it_is_set() -> None:
    found = problems(_rule('create_task: {kind: note, subject: "Offer {{ offer.title }}"}'))
    assert found == [f"{FILE}:11:44: 'subject': unknown variable 'offer' "
                     "— 'offer' is only set in the texts of an offer"]


def test_the_offer_in_an_offer_subject_is_fine() -> None:
    rules = load(_rule('offer: {offer: free_trial, subject: "Offer {{ offer.title }}"}'))
    assert [r.id for r in rules.file.rules] == ["x"]


def test_item_without_for_each_is_an_error_and_with_for_each_is_fine() -> None:
    subject = 'subject: "Make it happen: {{ item }}"'
    found = problems(_rule(f"create_task: {{kind: experience, {subject}}}", "meeting.held"))
    assert found == [f"{FILE}:11:50: 'subject': unknown variable 'item' "
                     "— 'item' is only set in the texts of a create_task with for_each"]
    load(_rule(f"create_task: {{kind: experience, {subject}, for_each: feedback}}", "meeting.held"))


def test_a_per_action_variable_in_a_block_is_reported_on_its_line_inside_the_block() -> None:
    found = problems("""\
  - id: x
    on: meeting.held
    then:
      - create_task:
          kind: note
          subject: Note
          description: |
            Due {{ due_at }}.
            Before check-in {{ checkin.slot }}.
""")
    assert found == [f"{FILE}:16:13: 'description': unknown variable 'checkin' "
                     "— 'checkin' is only set in the texts of schedule_checkins"]


def test_the_apology_draft_has_no_due_date_but_its_review_task_does() -> None:
    templates = {"apology.html.j2": "<p>Dear {{ contact_name }},</p>\n<p>By {{ due_at }}</p>\n"}
    review = 'review_subject: "Review by {{ due_at }}"'
    found = problems(_rule(f"draft_apology: {{template: apology.html.j2, subject: Sorry, {review}}}",
                           "complaint.logged"), templates)
    assert found == [f"{TEMPLATES_DIR}/apology.html.j2:2:1: unknown variable 'due_at' "
                     "— 'due_at' is only set in the texts of tasks and check-ins"]


def test_a_template_file_rendered_for_an_offer_and_a_plain_task_may_use_only_what_both_have() -> None:
    templates = {"offer.txt.j2": "Due {{ due_at }}.\nOffer: {{ offer.title }}\n"}
    found = problems("""\
  - id: x
    on: customer.lapsed
    then:
      - offer: {offer: free_trial, template: offer.txt.j2}
      - create_task: {kind: note, subject: Note, template: offer.txt.j2}
""", templates)
    assert found == [f"{TEMPLATES_DIR}/offer.txt.j2:2:1: unknown variable 'offer' "
                     "— 'offer' is only set in the texts of an offer"]


def test_every_per_action_variable_says_where_it_is_set() -> None:
    assert set(PER_ACTION) == set().union(*TEXT_VARIABLES.values())


# --- the lint and the realiser agree, text by text ----------------------------------------------

TEXT = "{{ VAR }}"
# Each action with one text set to TEXT (inline, or the file t.txt.j2 / t.html.j2), run on a
# meeting, and the per-action variables that text has when the action is realised.
CASES: list[tuple[str, frozenset[str]]] = [
    ('create_task: {kind: note, subject: "TEXT"}', frozenset({"due_at"})),
    ('create_task: {kind: note, subject: s, description: "TEXT"}', frozenset({"due_at"})),
    ("create_task: {kind: note, subject: s, template: t.txt.j2}", frozenset({"due_at"})),
    ('create_task: {kind: note, subject: "TEXT", for_each: feedback}',
     frozenset({"due_at", "item"})),
    ("create_task: {kind: note, subject: s, template: t.txt.j2, for_each: feedback}",
     frozenset({"due_at", "item"})),
    ('create_task: {kind: discovery, subject: "TEXT", for_each: feedback}', frozenset({"due_at"})),
    ('offer: {offer: free_trial, subject: "TEXT"}', frozenset({"due_at", "offer"})),
    ("offer: {offer: free_trial, template: t.txt.j2}", frozenset({"due_at", "offer"})),
    ('draft_apology: {template: a.html.j2, subject: "TEXT"}', frozenset()),
    ("draft_apology: {template: t.html.j2, subject: s}", frozenset()),
    ('draft_apology: {template: a.html.j2, subject: s, review_subject: "TEXT"}',
     frozenset({"due_at"})),
    ('draft_apology: {template: a.html.j2, subject: s, acknowledgement_description: "TEXT"}',
     frozenset({"due_at"})),
    ('schedule_checkins: {subject: "TEXT"}', frozenset({"due_at", "checkin"})),
    ('schedule_checkins: {description: "TEXT"}', frozenset({"due_at", "checkin"})),
    ('escalate: {to: {queue: default}, subject: s, description: "TEXT"}', frozenset({"due_at"})),
    ('add_to_survey: {subject: "TEXT"}', frozenset({"due_at"})),
    ("add_to_survey: {template: t.txt.j2}", frozenset({"due_at"})),
    ('close_plan: {outcome: won, reason: "TEXT"}', frozenset()),
    ('close_plan: {outcome: won, reason: r, follow_up: {kind: follow_up, subject: "TEXT"}}',
     frozenset({"due_at"})),
    ('close_plan: {outcome: won, reason: r, follow_up: {kind: follow_up, subject: "TEXT", '
     "for_each: feedback}}", frozenset({"due_at"})),
    ("close_plan: {outcome: won, reason: r, follow_up: {kind: note, subject: s, "
     "template: t.txt.j2}}", frozenset({"due_at"})),
    ('publish_event: {type: winback.x, fields: {x: "TEXT"}}', frozenset()),
]


def _variant(action: str, variable: str) -> tuple[str, dict[str, str]]:
    """The rules text and templates with ``variable`` used in the text under test."""
    text = TEXT.replace("VAR", variable)
    templates = {"a.html.j2": "<p>Sorry.</p>", "t.txt.j2": text, "t.html.j2": f"<p>{text}</p>"}
    return HEAD + _rule(action.replace("TEXT", text), "meeting.held"), templates


def _linted(rules: str, templates: Mapping[str, str], variable: str) -> bool:
    try:
        parse_rules(rules, FILE, templates)
        found: list[str] = []
    except RulesInvalidError as exc:
        # A for_each the realiser ignores (discovery, follow_up) is refused whatever the text.
        found = [str(p) for p in exc.problems if "for_each has no effect" not in str(p)]
    assert all(f"unknown variable '{variable}'" in p for p in found), found  # and nothing else
    return not found


def _rendered(rules: str, templates: Mapping[str, str]) -> bool:
    # Straight from the model, past the lint: what the realiser does with a text the lint refuses.
    data = YAML(typ="safe").load(rules)
    ruleset = RuleSet(RuleFile.model_validate(data), Templates(dict(templates)), FILE)
    opened = handle(lapsed(), None, ruleset, later(lapsed()))
    held = meeting("m1", "2026-11-06T11:00", feedback=["faster replies", "a named contact"])
    try:
        outcome = handle(held, opened.plan, ruleset, later(held))
    except RuleError:
        return False
    assert outcome.actions, "the action under test wrote nothing, so nothing was rendered"
    return True


@pytest.mark.parametrize(("action", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_lint_accepts_a_per_action_variable_exactly_where_the_realiser_sets_it(
    action: str, expected: frozenset[str]
) -> None:
    variants = {name: _variant(action, name) for name in PER_ACTION}
    assert {name for name, (r, t) in variants.items() if _linted(r, t, name)} == expected
    assert {name for name, (r, t) in variants.items() if _rendered(r, t)} == expected
