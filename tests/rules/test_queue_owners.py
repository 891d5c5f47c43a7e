"""A queue owns Cases, never activities: the rules say so when they are loaded, at the line."""

from __future__ import annotations

from handlers.rules.loader import parse_rules
from tests.rules.snippets import FILE, HEAD, TEMPLATES, problems

QUEUED = HEAD.replace("survey: QUEUE-SURVEY}", "survey: QUEUE-SURVEY, team: 'queue:Team_Q'}")
HINT = ("Salesforce lets a queue own Cases, never tasks, events or drafts: send the work to a "
        "queue with open_case, or name a user or a relation here")


def test_a_case_for_a_queue_loads() -> None:
    rules = parse_rules(QUEUED + """\
  - id: team-case
    on: complaint.logged
    then:
      - open_case: {subject: "Complaint from {{ account_name }}", owner: {queue: team}}
""", FILE, TEMPLATES)
    assert [r.id for r in rules.file.rules] == ["team-case"]


def test_a_queue_for_a_task_is_refused_at_the_owner() -> None:
    found = _problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_task: {kind: note, subject: "Note", owner: {queue: team}}
""")
    assert found == [f"{FILE}:11:67: owner 'team' is the queue 'queue:Team_Q': create_task writes "
                     f"an activity, which only a user can own — {HINT}"]


def test_a_queue_as_the_default_owner_is_refused_at_its_line() -> None:
    text = HEAD.replace("owners: {default: USR-DEFAULT,", "owners: {default: 'queue:Team_Q',")
    found = problems(text + """\
  - id: x
    on: complaint.logged
    then:
      - open_case: {subject: "Case", owner: {queue: survey}}
""", whole=True)
    assert len(found) == 1
    assert found[0].startswith(f"{FILE}:3:21: the default owner 'queue:Team_Q' is a queue")


def test_a_queue_named_as_a_user_is_refused() -> None:
    found = _problems("""\
  - id: x
    on: complaint.logged
    then:
      - escalate: {to: {user: "queue:Team_Q"}, subject: "Escalated"}
""")
    assert found == [f"{FILE}:11:31: 'queue:Team_Q' is a queue, not a user — {HINT}"]


def _problems(rules: str) -> list[str]:
    return problems(QUEUED + rules, whole=True)
