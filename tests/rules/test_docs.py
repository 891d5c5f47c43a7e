"""The rules guide stays true: its full example is a valid rules file for the shipped templates."""

from __future__ import annotations

import re

from handlers.rules.loader import parse_rules
from tests.rules.snippets import FOLLOW_UP_WITH_FOR_EACH, ROOT, problems

GUIDE = ROOT / "docs" / "rules.md"


def _full_example() -> str:
    section = GUIDE.read_text().split("## A full example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the guide lost its full example"
    return match.group(1)


def test_the_full_example_in_the_rules_guide_is_valid() -> None:
    templates = {p.name: p.read_text() for p in (ROOT / "config" / "templates").glob("*.j2")}
    rules = parse_rules(_full_example(), "docs/rules.md", templates)
    assert rules.version == "2026.11-2"
    assert {r.on for r in rules.file.rules} == {"customer.lapsed", "complaint.logged",
                                                "meeting.held"}


def test_the_guide_shows_the_real_yaml_syntax_error() -> None:
    (found,) = problems("  - id: x\n    on: [customer.lapsed\n")
    assert found in GUIDE.read_text()


def test_the_guide_shows_the_real_for_each_error() -> None:
    (found,) = problems(FOLLOW_UP_WITH_FOR_EACH)
    assert found in GUIDE.read_text()
