"""Template lint: syntax, unknown variables, banned phrases, apologies that ask them to come back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import Environment, TemplateSyntaxError, meta, nodes

from handlers.context import PER_ACTION
from handlers.rules.errors import did_you_mean
from handlers.rules.phrases import find_phrases


@dataclass(frozen=True)
class TemplateIssue:
    """One problem in a template, at ``line`` (1-based) of its source."""

    line: int
    message: str
    expected: str | None = None
    suggestion: str | None = None


@dataclass(frozen=True)
class LintRules:
    """What a template is checked against; ``variables=None`` skips the variable check."""

    variables: frozenset[str] | None
    banned_phrases: Sequence[str]
    come_back_phrases: Sequence[str] = ()  # only for apologies (draft_apology)


def _first_use(ast: nodes.Template, name: str) -> int:
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
    return min(lines, default=1)


def _hint(name: str, known: frozenset[str]) -> str | None:
    if name in PER_ACTION:  # a real variable, only not in this kind of text: say where it is
        return f"'{name}' is only set in {PER_ACTION[name]}"
    return did_you_mean(name, sorted(known))


def _variable_issues(ast: nodes.Template, known: frozenset[str]) -> list[TemplateIssue]:
    unknown = sorted(meta.find_undeclared_variables(ast) - known)
    return [
        TemplateIssue(_first_use(ast, name), f"unknown variable '{name}'",
                      "a variable of the event, the plan or the action", _hint(name, known))
        for name in unknown
    ]


def lint_template(source: str, env: Environment, rules: LintRules) -> list[TemplateIssue]:
    """Every issue in one template; a syntax error stops there, since nothing else can be read."""
    # ``env`` is the environment that renders the template: lint and rendering agree on syntax,
    # filters and autoescaping.
    try:
        ast = env.parse(source)
        env.compile(ast)  # unknown filters and tests are only found when compiling
    except TemplateSyntaxError as exc:
        return [TemplateIssue(exc.lineno or 1, f"template syntax error: {exc.message}")]
    issues = [] if rules.variables is None else _variable_issues(ast, rules.variables)
    issues += [
        TemplateIssue(line, f"uses the banned phrase '{phrase}'",
                      suggestion="say what will happen, and when, instead")
        for line, phrase in find_phrases(source, rules.banned_phrases)
    ]
    issues += [
        TemplateIssue(line, f"the apology asks the customer to come back ('{phrase}')",
                      suggestion="an apology names the failure and what has changed, and asks "
                      "for nothing")
        for line, phrase in find_phrases(source, rules.come_back_phrases)
    ]
    return issues
