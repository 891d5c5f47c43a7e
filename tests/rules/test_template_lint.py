"""Template lint: files and inline texts, with lines in the template file or in rules.yaml."""

from __future__ import annotations

from jinja2 import Environment

from handlers.rules.lint import LintRules, lint_template
from handlers.rules.phrases import find_phrases
from tests.rules.snippets import APOLOGY, FILE, load, problems

TEMPLATES_DIR = "config/templates"


def _apology_rule(template: str = "apology.html.j2", subject: str = '"We let you down"') -> str:
    return f"""\
  - id: sorry
    on: complaint.logged
    then:
      - draft_apology: {{template: {template}, subject: {subject}}}
"""


def test_inline_unknown_variable_is_reported_on_its_rule_line_with_a_suggestion() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    then:
      - create_task: {kind: note, subject: "Call {{ acount_name }}"}
""")
    assert found == [f"{FILE}:11:44: 'subject': unknown variable 'acount_name' "
                     "— did you mean 'account_name'?"]


def test_inline_problem_in_a_block_is_reported_on_the_exact_line_inside_it() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_task:
          kind: note
          subject: Complaint
          description: |
            They said: {{ summary }}
            Reply today. No problem
            is too small.
""")
    assert found == [f"{FILE}:16:13: 'description': uses the banned phrase 'No problem' "
                     "— say what will happen, and when, instead"]


def test_inline_syntax_error_is_reported() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then: [{create_task: {kind: note, subject: "{{ summary | shout }}"}}]
""")
    assert found == [f"{FILE}:10:48: 'subject': template syntax error: No filter named 'shout'."]


def test_a_variable_of_another_event_type_is_unknown_in_an_inline_text() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    then: [{create_task: {kind: note, subject: "{{ summary }}"}}]
""")
    assert found == [f"{FILE}:10:48: 'subject': unknown variable 'summary' "
                     "(expected a variable of the event, the plan or the action)"]


def test_template_file_unknown_variable_is_reported_at_its_line_in_the_file() -> None:
    templates = {"apology.html.j2": "<p>Dear {{ contact_name }},</p>\n<p>{{ sumary }}</p>\n"}
    found = problems(_apology_rule(), templates)
    assert found == [f"{TEMPLATES_DIR}/apology.html.j2:2:1: unknown variable 'sumary' "
                     "— did you mean 'summary'?"]


def test_template_file_banned_phrase_is_reported_even_with_a_curly_apostrophe_across_lines() -> None:
    templates = {"apology.html.j2": APOLOGY + "<p>Sorry, we\u2019re so\nbusy.</p>\n"}
    found = problems(_apology_rule(), templates)
    assert found == [f"{TEMPLATES_DIR}/apology.html.j2:3:1: uses the banned phrase "
                     "'we're so busy' — say what will happen, and when, instead"]


def test_an_apology_that_asks_them_to_come_back_is_rejected() -> None:
    templates = {"apology.html.j2": APOLOGY + "<p>Please give us another chance.</p>\n"}
    found = problems(_apology_rule(), templates)
    assert found == [f"{TEMPLATES_DIR}/apology.html.j2:3:1: the apology asks the customer to "
                     "come back ('give us another chance') — an apology names the failure and "
                     "what has changed, and asks for nothing"]


def test_an_apology_subject_that_asks_them_to_come_back_is_rejected_at_the_rule() -> None:
    found = problems(_apology_rule(subject='"Please come back"'))
    assert found == [f"{FILE}:11:61: 'subject': the apology asks the customer to come back "
                     "('come back') — an apology names the failure and what has changed, "
                     "and asks for nothing"]


def test_come_back_phrases_are_allowed_outside_apologies() -> None:
    templates = {"offer.txt.j2": "Come back to a free trial, {{ account_name }}."}
    rules = load("""\
  - id: offer
    on: customer.lapsed
    then: [{create_task: {kind: offer, subject: "Offer", template: offer.txt.j2}}]
""", templates)
    assert rules.templates.has("offer.txt.j2")


def test_a_template_no_rule_uses_is_still_checked_for_syntax_and_phrases() -> None:
    templates = {**{"apology.html.j2": APOLOGY}, "spare.txt.j2": "ok\n{% if x %}no end"}
    found = problems(_apology_rule(), templates)
    assert found == [f"{TEMPLATES_DIR}/spare.txt.j2:2:1: template syntax error: Unexpected end "
                     "of template. Jinja was looking for the following tags: 'elif' or 'else' "
                     "or 'endif'. The innermost block that needs to be closed is 'if'."]


def test_phrases_match_whole_words_only() -> None:
    assert find_phrases("I know problems are hard", ["No problem"]) == []
    assert find_phrases("Fine.\nno   PROBLEM at all", ["No problem"]) == [(2, "No problem")]
    assert find_phrases("\u2026we\u2019re so busy\u2026", ["\u2026we're so busy\u2026"]) == [
        (1, "\u2026we're so busy\u2026")]


def test_lint_without_known_variables_checks_only_syntax_and_phrases() -> None:
    rules = LintRules(variables=None, banned_phrases=["Are you sure?"])
    issues = lint_template("{{ anything }}\nAre you sure?", Environment(), rules)
    assert [(i.line, i.message) for i in issues] == [(2, "uses the banned phrase 'Are you sure?'")]
