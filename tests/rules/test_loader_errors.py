"""Every class of mistake in rules.yaml, on real YAML, reported at its exact line and column."""

from __future__ import annotations

import pytest

from handlers.errors import ConfigError
from handlers.rules.errors import Problem, RulesInvalidError
from tests.rules.snippets import FILE, HEAD, load, problems

ONE_RULE = """\
  - id: ask-why
    on: customer.lapsed
    then:
      - create_task: {kind: discovery, subject: "Ask {{ account_name }} why they left"}
"""


def test_a_valid_file_loads_with_its_version_and_rules() -> None:
    rules = load(ONE_RULE)
    assert rules.version == "1"
    assert [r.id for r in rules.file.rules] == ["ask-why"]
    assert rules.source == FILE


def test_yaml_syntax_error_is_reported_at_its_line_and_column() -> None:
    found = problems("  - id: x\n    on: [customer.lapsed\n", whole=False)
    assert len(found) == 1
    assert found[0].startswith(f"{FILE}:10:1: YAML syntax error:")


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    found = problems(ONE_RULE + "    on: complaint.logged\n")
    assert f"{FILE}:12:5: duplicate key 'on' (first at line 9) " \
        "— the later one would silently win: keep one" in found


def test_misspelt_key_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: ask-why
    on: customer.lapsed
    then:
      - create_task: {kind: discovery, subjct: "Ask why"}
""")
    assert found == [f"{FILE}:11:40: unknown key 'subjct' — did you mean 'subject'?"]


def test_misspelt_setting_key_gets_a_did_you_mean() -> None:
    text = HEAD.replace("settings:\n", "settings:\n  sla_minuts: 20\n") + ONE_RULE
    assert problems(text, whole=True) == [
        f"{FILE}:3:3: unknown key 'sla_minuts' — did you mean 'sla_minutes'?"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "'move_on_cooloff_days': input should be greater than or equal to 0"),
     ("forever", "wrong type for 'move_on_cooloff_days': got the text 'forever'")],
)
def test_a_bad_cool_off_is_reported_at_its_line(value: str, message: str) -> None:
    text = HEAD.replace("settings:\n", f"settings:\n  move_on_cooloff_days: {value}\n") + ONE_RULE
    (found,) = problems(text, whole=True)
    assert found.startswith(f"{FILE}:3:25: ")
    assert message in found


def test_unknown_key_without_a_close_match_lists_what_is_allowed() -> None:
    found = problems(ONE_RULE + "    colour: red\n")
    assert found == [f"{FILE}:12:5: unknown key 'colour' "
                     "(expected one of: id, description, on, when, then, stop)"]


def test_unknown_event_field_in_when_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: escalate
    on: complaint.logged
    when:
      sevrity: {equals: critical}
    then:
      - escalate: {to: {queue: default}, subject: "Critical complaint"}
""")
    assert found == [f"{FILE}:11:7: unknown field 'sevrity' for complaint.logged events "
                     "— did you mean 'severity'?"]


def test_plan_field_without_its_prefix_suggests_the_prefix() -> None:
    found = problems("""\
  - id: x
    on: meeting.held
    when: {any: [{stage: {equals: lost}}]}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:10:19: unknown field 'stage' for meeting.held events "
                     "— did you mean 'plan.stage'?"]


def test_field_of_another_event_type_is_unknown() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    when: {not: {severity: {equals: high}}}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:10:18: unknown field 'severity' for customer.lapsed events "
                     "(expected a field of the event, or plan.<field>)"]


def test_unknown_event_type_gets_a_did_you_mean() -> None:
    found = problems(ONE_RULE.replace("customer.lapsed", "customer.lapsd"))
    assert found == [f"{FILE}:9:9: unknown event type 'customer.lapsd' — did you mean 'customer.lapsed'?"]


def test_full_event_type_suggests_the_short_form() -> None:
    found = problems(ONE_RULE.replace("customer.lapsed", "crm.customer.lapsed"))
    assert found == [f"{FILE}:9:9: unknown event type 'crm.customer.lapsed' "
                     "— did you mean 'customer.lapsed'?"]


def test_wrong_types_say_what_was_expected() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_task: {kind: note, subject: "x", due_in: {days: soon}}
    stop: maybe
""")
    assert found == [
        f"{FILE}:11:64: wrong type for 'days': got the text 'soon' (expected a whole number)",
        f"{FILE}:12:11: wrong type for 'stop': got the text 'maybe' (expected true/false)",
    ]


def test_unquoted_version_that_yaml_reads_as_a_date_suggests_quotes() -> None:
    text = HEAD.replace('version: "1"', "version: 2026-11-01") + ONE_RULE
    assert problems(text, whole=True) == [
        f'{FILE}:1:10: wrong type for \'version\': got the date 2026-11-01 — put it in quotes: "2026-11-01"']


def test_a_list_where_a_value_belongs_is_one_problem_not_one_per_type() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    when: {severity: {equals: [high, critical]}}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:10:31: wrong type for 'equals': got a list "
                     "(expected text, a number, true/false or {setting: ...})"]


def test_unknown_action_lists_the_actions() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_tsk: {kind: note, subject: "x"}
""")
    assert found == [f"{FILE}:11:9: unknown action 'create_tsk' — did you mean 'create_task'?"]


def test_two_actions_in_one_list_item_are_reported() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_task: {kind: note, subject: "x"}
        escalate: {to: {queue: default}, subject: "y"}
""")
    assert found == [f"{FILE}:11:9: 'create_task' and 'escalate' are in one action: expected "
                     "exactly one — give each its own list item ('- ')"]


def test_a_test_written_where_a_field_belongs_is_explained() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    when: {greater_than: 1000}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:10:12: 'greater_than' is a test, not a field name "
                     "— write the field first: `some_field: {greater_than: ...}`"]


def test_misspelt_test_name_gets_a_did_you_mean_without_a_second_missing_problem() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    when: {annual_value: {betwen: [1, 2]}}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:10:27: unknown key 'betwen' — did you mean 'between'?"]


def test_bad_regex_is_reported_at_the_regex() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    when:
      summary:
        matches: "refund(s"
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:12:18: 'matches': bad regular expression 'refund(s': "
                     "missing ), unterminated subpattern at position 6"]


def test_missing_required_key_is_reported_at_its_parent() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - create_task: {kind: note}
""")
    assert found == [f"{FILE}:11:9: missing key 'subject' in 'create_task' (expected text)"]


def test_empty_then_is_reported() -> None:
    found = problems("  - id: x\n    on: complaint.logged\n    then: []\n")
    assert found == [f"{FILE}:10:11: 'then' needs at least 1 item"]


def test_unknown_template_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: sorry
    on: complaint.logged
    then:
      - draft_apology: {template: apolgy.html.j2, subject: "We let you down"}
""")
    assert found == [f"{FILE}:11:35: unknown template 'apolgy.html.j2' — did you mean 'apology.html.j2'?"]


def test_unknown_setting_reference_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: big
    on: customer.lapsed
    when:
      annual_value: {at_least: {setting: high_value_treshold}}
    then: [{create_task: {kind: outreach, subject: "Call them"}}]
""")
    assert found == [f"{FILE}:11:42: unknown setting 'high_value_treshold' "
                     "— did you mean 'high_value_threshold'?"]


def test_unknown_queue_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    then:
      - create_task: {kind: survey, subject: "Survey", owner: {queue: survy}}
""")
    assert found == [f"{FILE}:11:71: unknown queue 'survy' — did you mean 'survey'?"]


def test_a_default_queue_missing_from_settings_is_reported_at_the_action() -> None:
    text = HEAD.replace("default: USR-DEFAULT, survey: QUEUE-SURVEY", "default: USR-DEFAULT")
    found = problems(text + "  - id: x\n    on: customer.lapsed\n    then:\n      - add_to_survey: {}\n",
                     whole=True)
    assert found == [f"{FILE}:11:9: unknown queue 'survey' (the action's default) "
                     "(expected a name under settings.owners: default)"]


def test_unknown_offer_gets_a_did_you_mean() -> None:
    found = problems("""\
  - id: x
    on: customer.lapsed
    then: [{offer: {offer: free_trail}}]
""")
    assert found == [f"{FILE}:10:28: unknown offer 'free_trail' — did you mean 'free_trial'?"]


def test_duplicate_rule_ids_are_reported_at_the_second() -> None:
    found = problems(ONE_RULE + ONE_RULE)
    assert found == [f"{FILE}:12:9: duplicate rule id 'ask-why' (first at line 8) "
                     "— give each rule its own id: CRM records name the rule"]


def test_rule_after_an_unconditional_stop_is_unreachable() -> None:
    found = problems("""\
  - id: catch-all
    on: complaint.logged
    then: [{create_task: {kind: note, subject: "x"}}]
    stop: true
  - id: lapsed-still-runs
    on: customer.lapsed
    then: [{create_task: {kind: note, subject: "x"}}]
  - id: never
    on: complaint.logged
    when: {severity: {equals: high}}
    then: [{create_task: {kind: note, subject: "x"}}]
""")
    assert found == [f"{FILE}:15:5: rule 'never' is unreachable: rule 'catch-all' (line 8) "
                     "matches every complaint.logged event and has stop: true "
                     "— move it above line 8, or give 'catch-all' a 'when'"]


def test_a_conditional_stop_leaves_later_rules_reachable() -> None:
    rules = load("""\
  - id: first
    on: complaint.logged
    when: {severity: {equals: critical}}
    then: [{create_task: {kind: note, subject: "x"}}]
    stop: true
  - id: second
    on: complaint.logged
    then: [{create_task: {kind: note, subject: "y"}}]
""")
    assert [r.id for r in rules.file.rules] == ["first", "second"]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    # Unknown event type, unknown field, unknown queue ('managers' is not in HEAD's owners),
    # unknown action: four rules' worth of mistakes in one run.
    found = problems("""\
  - id: a
    on: customer.lapsd
    then: [{create_task: {kind: note, subject: "x"}}]
  - id: b
    on: complaint.logged
    when: {sevrity: {equals: high}}
    then: [{escalate: {to: {queue: managers}, subject: "x"}}]
  - id: c
    on: meeting.held
    then: [{bogus: {}}]
""")
    assert [p.split(": ")[0] for p in found] == [f"{FILE}:9:9", f"{FILE}:13:12", f"{FILE}:14:36",
                                                  f"{FILE}:17:13"]


def test_the_error_is_a_config_error_listing_every_problem() -> None:
    with pytest.raises(RulesInvalidError) as caught:
        load(ONE_RULE.replace("customer.lapsed", "customer.lapsd") + "    colour: red\n")
    assert isinstance(caught.value, ConfigError)
    assert len(caught.value.problems) == 2
    assert str(caught.value).splitlines()[0] == "the rules are invalid (2 problems):"


def test_a_problem_prints_like_a_compiler_error() -> None:
    problem = Problem("config/rules.yaml", 12, 7, "unknown key 'sevrity'", "one of: severity",
                      "did you mean 'severity'?")
    assert str(problem) == "config/rules.yaml:12:7: unknown key 'sevrity' — did you mean 'severity'?"
    assert str(Problem("f", 1, 2, "m", "x")) == "f:1:2: m (expected x)"


def test_a_file_that_is_not_a_mapping_is_one_problem() -> None:
    assert problems("- just\n- a list\n", whole=True) == [
        f"{FILE}:1:1: the rules file must be a mapping "
        "(expected version, settings and rules at the top level)"]


def test_a_misspelt_key_in_an_action_does_not_hide_its_other_problems() -> None:
    found = problems("""\
  - id: x
    on: complaint.logged
    then:
      - escalate:
          to: {queue: survy}
          subject: "No problem"
          priorty: high
""")
    assert found == [
        f"{FILE}:12:23: unknown queue 'survy' — did you mean 'survey'?",
        f"{FILE}:13:20: 'subject': uses the banned phrase 'No problem' "
        "— say what will happen, and when, instead",
        f"{FILE}:14:11: unknown key 'priorty' — did you mean 'priority'?",
    ]
