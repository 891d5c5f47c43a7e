"""Sandboxed Jinja2 rendering of task texts and email drafts; event text can never run as code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from handlers.errors import RuleError
from handlers.plain_texts import NotPlain, plain_text


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    # StrictUndefined: a misspelt variable is an error, never a silent blank in a customer email.
    return ImmutableSandboxedEnvironment(
        autoescape=select_autoescape(default=html, default_for_string=html),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class _Compiled:
    """A compiled text, whether it names any of Jinja's globals (``range``, ``dict``...), and
    for a text that only looks data up, the same render without Jinja's per-render ``Context``
    (``handlers.plain_texts``)."""

    template: Template
    uses_globals: bool
    plain: Callable[[Mapping[str, Any]], str] | None = None

    def render(self, context: Mapping[str, Any]) -> str:
        if self.plain is not None:
            try:
                return self.plain(context)
            except NotPlain:
                pass  # not the plain case this time: Jinja renders it, and says what is wrong
        # ``Template.render`` copies the context twice (into a dict, then merged with the
        # globals) before every render; nine renders an event made that a large part of the
        # handler. Rendering only reads the context it is given (``{% set %}`` writes to the
        # render's own Context), so a text that names no global renders on the caller's dict.
        template = self.template
        env = template.environment
        parent = {**template.globals, **context} if self.uses_globals else context
        ctx = template.new_context(parent if isinstance(parent, dict) else dict(parent), shared=True)
        try:
            return env.concat(template.root_render_func(ctx)).strip()
        except Exception:  # noqa: BLE001 - re-raised by handle_exception, as Template.render does
            env.handle_exception()  # its traceback rewritten to the template's lines


def _compiled(env: ImmutableSandboxedEnvironment, source: str) -> _Compiled | str:
    # A text without any tag, expression or comment renders as itself (stripped, as every
    # render is): nothing to run. "\r" stays with Jinja, which rewrites line endings.
    if not any(mark in source for mark in ("{{", "{%", "{#", "\r")):
        return source.strip()
    parsed = env.parse(source)
    # Every name the text mentions, locals too: a superset of what it may look up.
    names = {node.name for node in parsed.find_all(nodes.Name)}
    template = env.from_string(parsed)
    # The environment's globals never change after start-up: a plain dict of them, not the
    # ChainMap Jinja keeps, is cheaper to merge.
    template.globals = dict(template.globals)
    html = bool(nodes.EvalContext(env).autoescape)
    return _Compiled(template, uses_globals=not names.isdisjoint(template.globals),
                     plain=plain_text(parsed, html))


@dataclass(frozen=True)
class Templates:
    """Template files by name (``apology.html.j2``...), plus inline strings from the rules.

    File names ending in ``.html.j2`` render with HTML autoescaping; everything else as text.
    Values from events are data passed to ``render``: Jinja2 never parses them as templates.
    """

    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_text", _environment(html=False))
        object.__setattr__(self, "_html", _environment(html=True))
        # Compiling is ~90% of rendering; a rule set never changes, so each text compiles once
        # (per Templates, that is per rule set loaded). One cache per environment, by source.
        object.__setattr__(self, "_compiled", ({}, {}))

    def has(self, name: str) -> bool:
        return name in self.sources

    def render_file(self, name: str, context: Mapping[str, Any]) -> str:
        if name not in self.sources:
            raise RuleError(f"template {name!r} not found in config/templates/")
        return self._render(name.endswith(".html.j2"), self.sources[name], context, name)

    def render_string(self, source: str, context: Mapping[str, Any]) -> str:
        return self._render(False, source, context, "inline template")

    def _render(self, html: bool, source: str, context: Mapping[str, Any], name: str) -> str:
        try:
            template = self._compiled[html].get(source)  # type: ignore[attr-defined]
            if template is None:
                template = self._compile(html, source)
            return template if isinstance(template, str) else template.render(context)
        except TemplateError as exc:
            raise RuleError(f"{name}: {exc}") from exc

    def _compile(self, html: bool, source: str) -> _Compiled | str:
        """The compiled template, or the text itself when it has no Jinja syntax at all."""
        cache: dict[str, _Compiled | str] = self._compiled[html]  # type: ignore[attr-defined]
        template = cache.get(source)
        if template is None:  # two threads may both compile once; the result is the same
            template = cache[source] = _compiled(self.environment(html), source)
        return template

    def environment(self, html: bool) -> ImmutableSandboxedEnvironment:
        """The environment used for parsing, so linting sees exactly what rendering sees."""
        return self._html if html else self._text  # type: ignore[attr-defined,no-any-return]
