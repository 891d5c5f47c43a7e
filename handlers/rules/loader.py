"""Parse ``rules.yaml`` into a RuleSet, or report every problem at once with file:line:column.

Pure: the caller reads the files (``worker.rules_source``) and passes their text. The YAML is read
round-trip (ruamel) so every key and value keeps its position; the model in
``handlers.rules.model`` validates the shape, and ``handlers.rules.checks`` adds what a schema
cannot know: event fields, settings, queues, offers and templates that exist, duplicate ids,
unreachable rules, and the template lint.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import LiteralScalarString

from handlers.owners import Reference
from handlers.rules.checks import RuleChecker, RuleParts, walk
from handlers.rules.errors import Path, Problem, RulesInvalidError
from handlers.rules.model import (
    SHORT_TYPES,
    ActionSpec,
    Condition,
    Owner,
    Rule,
    RuleFile,
    RuleSettings,
)
from handlers.rules.pydantic_errors import validation_problems
from handlers.rules.ruleset import RuleSet
from handlers.templates import Templates

T = TypeVar("T")
Position = tuple[int, int]  # 0-based line and column, as ruamel keeps them



@dataclass
class YamlDocument:
    """Plain data from the YAML, with the position of every key and value by path."""

    file: str
    text: str
    data: Any = None
    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)
    literal_blocks: set[Path] = field(default_factory=set)

    def locate(self, path: Path, at_key: bool) -> tuple[int, int]:
        """1-based line and column of ``path``, or of the nearest enclosing thing written."""
        for n in range(len(path), -1, -1):
            where = self.keys if at_key or n < len(path) else self.values
            if path[:n] in where:
                line, column = where[path[:n]]
                return line + 1, column + 1
        return 1, 1

    def locate_line(self, path: Path, template_line: int) -> tuple[int, int]:
        """Where line ``template_line`` of the string at ``path`` is: exact in a ``|`` block."""
        if path not in self.literal_blocks or path not in self.values:
            return self.locate(path, False)
        line = self.values[path][0] + template_line  # the block starts on the line after '|'
        lines = self.text.splitlines()
        text = lines[line] if line < len(lines) else ""
        return line + 1, len(text) - len(text.lstrip()) + 1


def _position(lookup: Any, key: Any, fallback: Position) -> Position:
    try:
        line, column = lookup(key)
    except (KeyError, IndexError, TypeError):  # merged (<<) keys have no position of their own
        return fallback
    return int(line), int(column)


def _plain(doc: YamlDocument, node: Any, path: Path) -> Any:
    here = doc.values.get(path, (0, 0))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            name = key if isinstance(key, str) else str(key)
            doc.keys[(*path, name)] = _position(node.lc.key, key, here)
            doc.values[(*path, name)] = _position(node.lc.value, key, here)
            out[name] = _plain(doc, value, (*path, name))
        return out
    if isinstance(node, CommentedSeq):
        for i in range(len(node)):
            doc.keys[(*path, i)] = doc.values[(*path, i)] = _position(node.lc.item, i, here)
        return [_plain(doc, item, (*path, i)) for i, item in enumerate(node)]
    if isinstance(node, bool | ScalarBoolean):
        return bool(node)
    if isinstance(node, LiteralScalarString):
        doc.literal_blocks.add(path)
    for kind in (str, int, float):  # ruamel's subclasses keep formatting pydantic does not need
        if isinstance(node, kind):
            return kind(node)
    return node


def _duplicate_keys(root: Node | None, file: str) -> list[Problem]:
    problems, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value != "<<":
                    mark = key.start_mark
                    if key.value in seen:
                        problems.append(Problem(
                            file, mark.line + 1, mark.column + 1,
                            f"duplicate key '{key.value}' (first at line {seen[key.value]})",
                            suggestion="the later one would silently win: keep one"))
                    seen.setdefault(key.value, mark.line + 1)
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return problems


def read_yaml(text: str, file: str) -> tuple[YamlDocument, list[Problem]]:
    """The document with positions, plus duplicate keys; a syntax error raises at once."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # reported below, with both lines, instead of one exception
    doc = YamlDocument(file, text)
    try:
        problems = _duplicate_keys(yaml.compose(text), file)
        doc.data = _plain(doc, yaml.load(text), ())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise RulesInvalidError([Problem(file, line, column, f"YAML syntax error: {what}")]) from exc
    return doc, problems


def parse_rules(
    text: str, filename: str, templates: Mapping[str, str], *, templates_dir: str | None = None
) -> RuleSet:
    """Validate ``text`` (the rules file named ``filename``) with its templates by name.

    ``templates_dir`` is only how template files are named in problems; it defaults to
    ``templates/`` beside the rules file. Raises RulesInvalidError listing every problem.
    """
    doc, problems = read_yaml(text, filename)
    if not isinstance(doc.data, dict):
        problems.append(Problem(filename, 1, 1, "the rules file must be a mapping",
                                "version, settings and rules at the top level"))
        raise RulesInvalidError(problems)
    rule_file: RuleFile | None = None
    try:
        rule_file = RuleFile.model_validate(doc.data)
    except ValidationError as exc:
        problems += validation_problems(exc, RuleFile, doc.data, filename, doc.locate)
    folder = templates_dir or posixpath.join(posixpath.dirname(filename), "templates")
    settings, invalid_settings = _usable_settings(doc.data.get("settings", {}))
    raw_rules = doc.data.get("rules")
    raw_list = raw_rules if isinstance(raw_rules, list) else []
    parts = [_parts(i, raw) for i, raw in enumerate(raw_list)]
    problems += RuleChecker(doc, settings, invalid_settings, templates, folder).check(parts)
    if problems or rule_file is None:
        raise RulesInvalidError(problems or [Problem(filename, 1, 1, "invalid rules file")])
    return RuleSet(rule_file, Templates(dict(templates)), filename, _references(doc, rule_file))


def _references(doc: YamlDocument, rule_file: RuleFile) -> tuple[Reference, ...]:
    """Every owner and campaign the rules name, at the line that names it (defaults at line 1)."""
    found = []
    for role, value in rule_file.settings.owners.items():
        line, _ = doc.locate(("settings", "owners", role), False)
        found.append(Reference("owner", role, value, doc.file, line))
    for i, rule in enumerate(rule_file.rules):
        for j, spec in enumerate(rule.then):
            campaign = getattr(getattr(spec, "add_to_survey", None), "campaign_id", None)
            if campaign:
                line, _ = doc.locate(("rules", i, "then", j, "add_to_survey", "campaign_id"), False)
                found.append(Reference("campaign", rule.id, campaign, doc.file, line))
            # An owner written in the action itself ({user: ...}) is looked up like a role.
            for path, value in walk(spec, ("rules", i, "then", j)):
                if isinstance(value, Owner) and value.user:
                    line, _ = doc.locate((*path, "user"), False)
                    found.append(Reference("user", rule.id, value.user, doc.file, line))
    return tuple(found)


_SETTINGS: TypeAdapter[RuleSettings] = TypeAdapter(RuleSettings)
_RULE: TypeAdapter[Rule] = TypeAdapter(Rule)
_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)
_ACTION: TypeAdapter[ActionSpec] = TypeAdapter(ActionSpec)


def _adapted(adapter: TypeAdapter[T], data: Any) -> T | None:
    try:
        return adapter.validate_python(data)
    except ValidationError:  # already reported, with positions, by validating the whole file
        return None


def _usable_settings(raw: Any) -> tuple[RuleSettings, frozenset[str]]:
    """Settings from the keys that validate on their own, defaults for the rest, and which failed."""
    if not isinstance(raw, dict):
        return RuleSettings(), frozenset(RuleSettings.model_fields)
    valid = {k: v for k, v in raw.items() if _adapted(_SETTINGS, {k: v}) is not None}
    settings = _adapted(_SETTINGS, valid) or RuleSettings()
    return settings, frozenset(set(RuleSettings.model_fields) - set(valid))


def _parts(index: int, raw: Any) -> RuleParts:
    rule = _adapted(_RULE, raw)
    if rule is not None:
        return RuleParts(index, rule, rule.on, rule.when, tuple(enumerate(rule.then)))
    if not isinstance(raw, dict):
        return RuleParts(index, None, None, None, ())
    on = raw.get("on") if raw.get("on") in SHORT_TYPES else None
    when = _adapted(_CONDITION, raw["when"]) if raw.get("when") is not None else None
    then = raw.get("then")
    adapted = ((j, _salvaged(a)) for j, a in enumerate(then if isinstance(then, list) else []))
    return RuleParts(index, None, on, when, tuple((j, a) for j, a in adapted if a is not None))


_ACTION_MODELS: dict[str, type[BaseModel]] = {
    next(iter(m.model_fields)): m for m in get_args(ActionSpec)}


def _salvaged(raw: Any) -> Any:
    """The action, or, when it does not validate, the action built from its fields that do.

    So one misspelt key in an action still lets its owner, template and texts be checked.
    """
    action = _adapted(_ACTION, raw)
    if action is not None or not isinstance(raw, dict) or len(raw) != 1:
        return action
    ((name, spec),) = raw.items()
    model = _ACTION_MODELS.get(name)
    if model is None or not isinstance(spec, dict):
        return None
    spec_model = model.model_fields[name].annotation
    if not (isinstance(spec_model, type) and issubclass(spec_model, BaseModel)):
        return None
    valid: dict[str, Any] = {}
    for field_name, info in spec_model.model_fields.items():
        key = info.alias or field_name
        if key in spec and info.annotation is not None:
            value = _adapted(TypeAdapter(info.annotation), spec[key])
            if value is not None:
                valid[field_name] = value
    parts: dict[str, Any] = {name: spec_model.model_construct(None, **valid)}
    return model.model_construct(None, **parts)
