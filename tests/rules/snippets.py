"""Small rules files for the tests: a valid base, and helpers that collect the problems as text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from handlers.rules.errors import RulesInvalidError
from handlers.rules.loader import parse_rules
from handlers.rules.ruleset import RuleSet

FILE = "config/rules.yaml"
ROOT = Path(__file__).resolve().parents[2]

# Lines 1-7; the rules of each test start on line 8.
HEAD = """\
version: "1"
settings:
  owners: {default: USR-DEFAULT, survey: QUEUE-SURVEY}
  offers:
    free_trial: {title: A free trial, description: Thirty days at no charge}
  banned_phrases: ["No problem", "we're so busy"]
rules:
"""

APOLOGY = "<p>Dear {{ contact_name }},</p>\n<p>You told us: {{ summary }}</p>\n"
TEMPLATES: Mapping[str, str] = {"apology.html.j2": APOLOGY, "discovery.txt.j2": "Ask {{ account_name }} why."}


def load(rules: str, templates: Mapping[str, str] | None = None) -> RuleSet:
    return parse_rules(HEAD + rules, FILE, TEMPLATES if templates is None else templates)


def problems(rules: str, templates: Mapping[str, str] | None = None, *, whole: bool = False) -> list[str]:
    """Every problem as ``file:line:column: message``; ``whole`` means ``rules`` is the whole file."""
    text = rules if whole else HEAD + rules
    try:
        parse_rules(text, FILE, TEMPLATES if templates is None else templates)
    except RulesInvalidError as exc:
        return [str(p) for p in exc.problems]
    raise AssertionError("the rules were accepted, but problems were expected")


# A close_plan follow-up with for_each (an error): tests/rules/test_for_each.py and the guide's example.
FOLLOW_UP_WITH_FOR_EACH = """\
  - id: won-back
    on: meeting.held
    then:
      - close_plan:
          outcome: won
          reason: "They came back"
          follow_up:
            kind: follow_up
            subject: "Keep {{ account_name }} happy"
            for_each: added_experiences
"""
