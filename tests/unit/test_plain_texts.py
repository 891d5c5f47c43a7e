"""The plain-text render (``handlers.plain_texts``) says exactly what Jinja says: every text in
config/, rendered on the contexts the sample events give it and on variants of them (a name
missing, None, empty, HTML, markup, a number, a list, an object that is not a dict), gives the
same text or the same error both ways; and the texts it is meant for really take it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from jinja2 import Template, TemplateError, nodes
from markupsafe import Markup

from handlers.errors import RuleError
from handlers.events import parse_event
from handlers.plain_texts import NotPlain, plain_text
from handlers.plan import Plan
from handlers.registry import handle
from handlers.templates import Templates
from tests.unit.rulesets import CONFIG, default_rules, raw_rules, templates

SAMPLES = sorted((CONFIG / "samples").rglob("*.json"))


@dataclass(frozen=True)
class _Recording(Templates):
    """The shipped templates, keeping a copy of every context each text is rendered with."""

    seen: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def render_file(self, name: str, context: Mapping[str, Any]) -> str:
        self.seen.append((self.sources[name], dict(context)))
        return super().render_file(name, context)

    def render_string(self, source: str, context: Mapping[str, Any]) -> str:
        self.seen.append((source, dict(context)))
        return super().render_string(source, context)


def _sample_events() -> Iterator[Any]:
    for path in SAMPLES:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        for raw in loaded if isinstance(loaded, list) else [loaded]:
            yield parse_event(json.dumps(raw))


def _recorded() -> list[tuple[str, Mapping[str, Any]]]:
    """Every (text, context) the handlers render for the sample events, in order per account."""
    recording = _Recording(templates().sources)
    rules = replace(default_rules(), templates=recording)
    plans: dict[str, Plan] = {}
    for event in _sample_events():
        now = (event.time or datetime(2026, 11, 1, tzinfo=UTC)) + timedelta(minutes=1)
        outcome = handle(event, plans.get(event.account_id), rules, now)
        if outcome.plan is not None:
            plans[event.account_id] = outcome.plan
    return recording.seen


def _rule_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _rule_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _rule_texts(item)


def _config_texts() -> list[tuple[str, bool]]:
    """(text, autoescaped) for every template file and every string in config/rules.yaml."""
    files = [(source, name.endswith(".html.j2")) for name, source in templates().sources.items()]
    inline = sorted({text for text in _rule_texts(raw_rules()) if "{" in text})
    return files + [(text, False) for text in inline]


# Texts beyond config/, for what config/ does not show (yet).
EDGES = [
    "{{ range }}", "{{ plan.items }}", "{{ plan.get }}", "{{ a.b.c }}", "{{ a.b }}",
    "{% if a %}x{% elif b %}y{% else %}z{% endif %}", "{{ a and b }}", "{{ not a }}",
    "{{ a is none }}", "{{ a is not none }}", "  {{ a }}  \n", "{{ 'x<' }}", "{{ 1 }}",
    "line\r\n{{ a }}\r\n", "{{ a }}{# note #}", "{% if a %}\n  x\n{% endif %}\n  y\n",
    "{{ a or b or 'none' }}", "{{ a.__class__ }}", "<p>{{ a }}</p>", "{{ true }}{{ none }}",
    "{ {{ a }} } {0} {} {{ b }}{", "{% if a %}{x}{% endif %}{{ a.b }} {}",
]


class _Opaque:
    """A value that is neither a dict nor a string, with an attribute: the sandbox's to read."""

    b = "attribute b"

    def __str__(self) -> str:
        return "opaque"


VALUES: list[Any] = [None, "", 0, 2.5, True, "<b>Tom & \"Jerry\"</b>", Markup("<i>ok</i>"),
                     ["x", "<y>"], {}, {"b": "<b>", "c": {"x": 1}}, _Opaque(),
                     datetime(2026, 11, 3, 10, tzinfo=UTC)]
_GONE = object()


def _paths(text: str, html: bool) -> list[tuple[str, ...]]:
    """Each name and ``a.b`` chain the text looks up, outermost first."""
    tree = _REFERENCE.environment(html).parse(text)
    found: set[tuple[str, ...]] = set()
    for node in tree.find_all((nodes.Name, nodes.Getattr)):
        chain: list[str] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Getattr):
            chain.insert(0, current.attr)
            current = current.node
        if isinstance(current, nodes.Name):
            found.add((current.name, *chain))
    return sorted(found)


def _with(context: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """``context`` with the value at ``path`` replaced (or removed, for ``_GONE``)."""
    top = dict(context)
    if len(path) == 1:
        if value is _GONE:
            top.pop(path[0], None)
        else:
            top[path[0]] = value
        return top
    inner = top.get(path[0])
    top[path[0]] = _with(inner if isinstance(inner, dict) else {}, path[1:], value)
    return top


def _variants(text: str, html: bool, context: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield dict(context)
    for path in _paths(text, html):
        for value in (_GONE, *VALUES):
            yield _with(context, path, value)


_REFERENCE = Templates()


@cache
def _jinja_template(text: str, html: bool) -> Template:
    return _REFERENCE.environment(html).from_string(text)


@cache
def _templates(text: str, html: bool) -> tuple[Templates, str]:
    name = "t.html.j2" if html else "t.txt.j2"
    return Templates({name: text}), name


def _jinja(text: str, html: bool, context: Mapping[str, Any]) -> str:
    """What Jinja itself makes of it, through its own ``Template.render``."""
    try:
        return _jinja_template(text, html).render(context).strip()
    except TemplateError as exc:
        return f"error: {exc}"
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


def _ours(text: str, html: bool, context: Mapping[str, Any]) -> str:
    templates, name = _templates(text, html)
    try:
        return templates.render_file(name, context)
    except RuleError as exc:
        return f"error: {str(exc).removeprefix('t.html.j2: ').removeprefix('t.txt.j2: ')}"
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


@cache
def _recorded_once() -> list[tuple[str, Mapping[str, Any]]]:
    seen = _recorded()
    assert len({text for text, _ in seen}) > 20  # the samples reach most of the texts
    return seen


@pytest.fixture(scope="module")
def union() -> dict[str, Any]:
    """Every name any text was rendered with, for texts the samples do not render."""
    merged: dict[str, Any] = {"a": "A", "b": "B"}
    for _, context in _recorded_once():
        merged.update(context)
    return merged


def _cases(union: Mapping[str, Any]) -> Iterator[tuple[str, bool, Mapping[str, Any]]]:
    recorded = _recorded_once()
    for text, html in [*_config_texts(), *((edge, False) for edge in EDGES),
                       *((edge, True) for edge in EDGES)]:
        contexts = [context for seen, context in recorded if seen == text] or [union]
        for context in contexts[:3]:
            for variant in _variants(text, html, context):
                yield text, html, variant


def test_every_text_renders_exactly_as_jinja_renders_it(union: dict[str, Any]) -> None:
    compared = 0
    for text, html, context in _cases(union):
        assert _ours(text, html, context) == _jinja(text, html, context), (text, context)
        compared += 1
    assert compared > 1000


def test_the_plain_render_answers_itself_for_most_texts_and_renders_the_same(
        union: dict[str, Any]) -> None:
    answered = 0
    for text, html, context in _cases(union):
        render = plain_text(_REFERENCE.environment(html).parse(text), html)
        if render is None:
            continue
        try:
            got = render(context)
        except NotPlain:
            continue
        assert got == _jinja(text, html, context), (text, context)
        answered += 1
    assert answered > 1000


@pytest.mark.parametrize(("name", "plain"), [
    ("discovery.txt.j2", True), ("offer.txt.j2", True), ("survey.txt.j2", True),
    ("acknowledgement.txt.j2", True), ("prompt_beliefs.txt.j2", True),
    ("apology.html.j2", False), ("feedback.txt.j2", False),  # loops and filters: Jinja's
])
def test_a_template_of_lookups_and_ifs_is_plain_and_one_with_loops_or_filters_is_not(
        name: str, plain: bool) -> None:
    tree = Templates().environment(name.endswith(".html.j2")).parse(templates().sources[name])
    assert (plain_text(tree, name.endswith(".html.j2")) is not None) == plain


def test_a_missing_name_in_a_plain_text_is_still_jinjas_undefined_error() -> None:
    with pytest.raises(RuleError, match=r"^inline template: 'account_name' is undefined$"):
        Templates().render_string("Find out why {{ account_name }} left", {})


def test_an_event_value_that_looks_like_jinja_is_shown_not_run() -> None:
    value = "{{ settings }}{% for x in range(3) %}x{% endfor %}"
    assert Templates().render_string("Said: {{ summary }}", {"summary": value,
                                                             "settings": "secret"}) == (
        f"Said: {value}")



@pytest.mark.parametrize(("text", "expected"), [
    ("{ {{ a }} } {0} {} {{ b }}{", "{ A } {0} {} B{"),
    ("{% if a %}{x}{% endif %}{{ c.d }} {}", "{x}D {}"),
    ("Dear {{ a or b }}, {{ c.d }}{% if not e %} and {{ b }}{% endif %}.", "Dear A, D and B."),
])
def test_a_plain_text_renders_itself_braces_in_its_words_included(text: str, expected: str
                                                                  ) -> None:
    render = plain_text(_REFERENCE.environment(False).parse(text), html=False)
    assert render is not None
    assert render({"a": "A", "b": "B", "c": {"d": "D"}, "e": None}) == expected
