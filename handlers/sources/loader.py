"""Parse a sources file, reporting every problem at file:line:column as the rules loader does."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from handlers.events import DATA_MODELS
from handlers.rules.errors import Problem, RulesInvalidError, did_you_mean
from handlers.rules.loader import YamlDocument, read_yaml
from handlers.rules.pydantic_errors import validation_problems
from handlers.sources.model import SPECIAL, Source, SourcesFile, spec


def parse_sources(text: str, filename: str) -> tuple[Source, ...]:
    """The sources in file order; raises RulesInvalidError listing every problem."""
    doc, problems = read_yaml(text, filename)
    if not isinstance(doc.data, dict):
        raise RulesInvalidError([*problems, Problem(filename, 1, 1, "the sources file must be a "
                                                    "mapping", "version and sources at the top")])
    parsed: SourcesFile | None = None
    try:
        parsed = SourcesFile.model_validate(doc.data)
    except ValidationError as exc:
        problems += validation_problems(exc, SourcesFile, doc.data, filename, doc.locate)
    if parsed is not None:
        problems += _checked(doc, parsed)
    if problems or parsed is None:
        raise RulesInvalidError(problems or [Problem(filename, 1, 1, "invalid sources file")])
    return tuple(parsed.sources)


def _problem(doc: YamlDocument, path: tuple[str | int, ...], message: str,
             suggestion: str | None = None) -> Problem:
    line, column = doc.locate(path, True)
    return Problem(doc.file, line, column, message, suggestion=suggestion)


def _checked(doc: YamlDocument, parsed: SourcesFile) -> list[Problem]:
    """What the schema cannot know: event fields that exist and are all filled, unique ids."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, source in enumerate(parsed.sources):
        here: tuple[str | int, ...] = ("sources", i)
        if source.id in seen:
            problems.append(_problem(doc, (*here, "id"), f"duplicate source id '{source.id}'"))
        seen.add(source.id)
        model = DATA_MODELS[source.emit]
        known = set(model.model_fields)
        for name, raw in source.data.items():
            if name not in known:
                problems.append(_problem(doc, (*here, "data", name),
                                         f"{source.emit} has no data field '{name}'",
                                         did_you_mean(name, known)))
            problems += _special_checked(doc, (*here, "data", name), raw)
        missing = [n for n, f in model.model_fields.items() if f.is_required() and n not in source.data]
        if missing:
            problems.append(_problem(doc, (*here, "data"), f"{source.emit} needs "
                                     f"{', '.join(missing)}: add them under data"))
    return problems


def _special_checked(doc: YamlDocument, path: tuple[str | int, ...], raw: Any) -> list[Problem]:
    s = spec(raw)
    names = [n for n in (s.field, s.default) if n and n.startswith("$") and n not in SPECIAL]
    return [_problem(doc, path, f"unknown value '{n}'", did_you_mean(n, SPECIAL)) for n in names]
