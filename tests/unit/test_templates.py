"""Rendering: each text compiled once per rule set, a text without Jinja syntax not run at all,
and the same output either way."""

from __future__ import annotations

import pytest

from handlers.errors import RuleError
from handlers.templates import Templates

FILES = {"note.txt.j2": "  Plain words, nothing to fill in.\n", "card.html.j2": "<p>Thanks & bye</p>",
         "list.txt.j2": "{% for n in range(3) %}{{ n }}{% endfor %}"}


@pytest.mark.parametrize(("source", "expected"), [
    ("  Call them back.\n", "Call them back."),
    ("Call {{ name }} back", "Call Ada back"),
    ("line one\r\nline two", "line one\nline two"),  # Jinja's line endings, constant or not
    ("{# a note for admins #}Call back", "Call back"),
], ids=["constant", "variable", "crlf", "comment"])
def test_a_text_renders_the_same_whether_or_not_it_has_jinja_syntax(source: str, expected: str
                                                                   ) -> None:
    assert Templates().render_string(source, {"name": "Ada"}) == expected


def test_a_constant_html_file_is_not_escaped_and_a_variable_is() -> None:
    templates = Templates({**FILES, "named.html.j2": "<p>{{ name }}</p>"})
    assert templates.render_file("card.html.j2", {}) == "<p>Thanks & bye</p>"
    assert templates.render_file("named.html.j2", {"name": "A&B"}) == "<p>A&amp;B</p>"


def test_jinja_globals_stay_available_to_every_render() -> None:
    templates = Templates(FILES)
    assert [templates.render_file("list.txt.j2", {}) for _ in range(2)] == ["012", "012"]


def test_a_misspelt_variable_is_still_an_error_on_every_render() -> None:
    templates = Templates()
    for _ in range(2):
        with pytest.raises(RuleError, match="'nmae' is undefined"):
            templates.render_string("Call {{ nmae }}", {"name": "Ada"})


def test_a_constant_file_renders_as_its_text_stripped() -> None:
    assert Templates(FILES).render_file("note.txt.j2", {}) == "Plain words, nothing to fill in."


def test_a_set_in_one_render_is_neither_written_to_the_context_nor_seen_by_the_next() -> None:
    templates, context = Templates(), {"name": "Ada"}
    assert templates.render_string("{% set name = 'Bob' %}{{ name }}", context) == "Bob"
    assert templates.render_string("Call {{ name }}", context) == "Call Ada"
    assert context == {"name": "Ada"}


def test_a_context_value_wins_over_a_jinja_global_of_the_same_name() -> None:
    assert Templates().render_string("{{ range }}", {"range": "all"}) == "all"
