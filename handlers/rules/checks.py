"""Checks a schema cannot make: event fields, settings, queues, offers, templates, reachability."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from handlers.context import TextKind, condition_fields, template_variables
from handlers.owners import owner_kind
from handlers.rules.errors import Path, Problem, did_you_mean, label, node_at, one_of
from handlers.rules.lint import LintRules, lint_template
from handlers.rules.model import (
    ACTION_NAMES,
    QUEUE_ACTIONS,
    TEST_NAMES,
    ActionSpec,
    All,
    ApologySpec,
    Condition,
    Owner,
    PublishSpec,
    Rule,
    RuleSettings,
    SettingRef,
    TaskSpec,
)
from handlers.rules.model_actions import Again
from handlers.rules.realised import ignored_for_each, is_inline_template, text_kind
from handlers.templates import Templates

_QUEUE_HINT = ("Salesforce lets a queue own Cases, never tasks, events or drafts: send the "
               "work to a queue with open_case, or name a user or a relation here")


class Document(Protocol):
    """The parsed YAML with positions (``loader.YamlDocument``)."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]]

    def locate(self, path: Path, at_key: bool) -> tuple[int, int]: ...

    def locate_line(self, path: Path, template_line: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class RuleParts:
    """What validated of one rule: a mistake in one part must not hide the problems in another."""

    index: int
    rule: Rule | None
    event_type: str | None  # short form, as written after ``on:``
    when: Condition | None
    actions: tuple[tuple[int, ActionSpec], ...]

    @property
    def path(self) -> Path:
        return ("rules", self.index)


def walk(obj: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every value in a validated model with its YAML path, defaults included."""
    yield path, obj
    if isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            # A salvaged spec (model_construct) lacks the fields that did not validate.
            yield from walk(getattr(obj, name, None), (*path, info.alias or name))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from walk(value, (*path, key))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from walk(value, (*path, i))


def _field_names(condition: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """The field names a ``when`` tests, with their paths, as written in the YAML."""
    if not isinstance(condition, dict):
        return
    for key, value in condition.items():
        if key in ("all", "any") and isinstance(value, list):
            for i, part in enumerate(value):
                yield from _field_names(part, (*path, key, i))
        elif key == "not":
            yield from _field_names(value, (*path, key))
        elif isinstance(key, str):
            yield (*path, key), key


def _always(condition: Condition | None) -> bool:
    if condition is None or condition == {}:
        return True
    return isinstance(condition, All) and all(_always(c) for c in condition.all)


class RuleChecker:
    """What the schema cannot know, checked on every part that validated; problems accumulate."""

    def __init__(self, doc: Document, settings: RuleSettings, invalid_settings: frozenset[str],
                 templates: Mapping[str, str], folder: str) -> None:
        self.doc, self.templates, self.folder = doc, templates, folder
        # Settings that did not validate are defaults here: queues and offers are not checked
        # against them, else one mistake in settings would be reported again at every use.
        self.settings, self.invalid_settings = settings, invalid_settings
        self.environments = Templates(dict(templates))
        self.problems: list[Problem] = []
        # Template name -> (event type, kind of text) of every text it is rendered as.
        self.uses: dict[str, set[tuple[str, TextKind]]] = {}
        self.apologies: set[str] = set()

    def report(self, path: Path, at_key: bool, message: str, expected: str | None = None,
               suggestion: str | None = None) -> None:
        line, column = self.doc.locate(path, at_key)
        self.problems.append(Problem(self.doc.file, line, column, message, expected, suggestion))

    def check(self, parts: list[RuleParts]) -> list[Problem]:
        self._ids()
        self._default_owner()
        self._reachable([(p.index, p.rule) for p in parts if p.rule is not None])
        for part in parts:
            if part.event_type is not None:
                self._fields((*part.path, "when"), part.event_type)
            for path, value in walk(part.when, (*part.path, "when")):
                self._value(path, value, part.event_type)
            for j, action in part.actions:
                for path, value in walk(action, (*part.path, "then", j)):
                    self._value(path, value, part.event_type)
        self._template_files()
        return self.problems

    def _ids(self) -> None:
        first: dict[str, int] = {}
        raw = self.doc.data.get("rules")
        for i, rule in enumerate(raw if isinstance(raw, list) else []):
            rule_id = rule.get("id") if isinstance(rule, dict) else None
            if not isinstance(rule_id, str):
                continue
            if rule_id not in first:
                first[rule_id] = i
                continue
            line, _ = self.doc.locate(("rules", first[rule_id], "id"), False)
            self.report(("rules", i, "id"), False,
                        f"duplicate rule id '{rule_id}' (first at line {line})",
                        suggestion="give each rule its own id: CRM records name the rule")

    def _reachable(self, rules: list[tuple[int, Rule]]) -> None:
        stoppers: dict[str, tuple[int, Rule]] = {}
        for i, rule in rules:
            if rule.on in stoppers:
                j, stopper = stoppers[rule.on]
                line, _ = self.doc.locate(("rules", j), True)
                self.report(("rules", i), True,
                            f"rule '{rule.id}' is unreachable: rule '{stopper.id}' (line {line}) "
                            f"matches every {rule.on} event and has stop: true",
                            suggestion=f"move it above line {line}, or give '{stopper.id}' "
                            "a 'when'")
            elif rule.stop and _always(rule.when):
                stoppers[rule.on] = (i, rule)

    def _value(self, path: Path, value: Any, event_type: str | None) -> None:
        if isinstance(value, SettingRef):
            self._setting(path, value)
        elif isinstance(value, Owner):
            self._owner(path, value)
        elif isinstance(value, BaseModel):
            self._spec(path, value, event_type)

    def _fields(self, path: Path, event_type: str) -> None:
        # On the YAML as written, so a misspelt field is found even where its tests are broken.
        known = condition_fields(event_type)
        for where, name in _field_names(node_at(self.doc.data, path), path):
            if name in known or name in TEST_NAMES:  # a test where a field belongs: the schema says
                continue
            hint = (f"did you mean 'plan.{name}'?" if f"plan.{name}" in known
                    else did_you_mean(name, sorted(known)))
            self.report(where, True, f"unknown field '{name}' for {event_type} events",
                        "a field of the event, or plan.<field>", hint)

    def _setting(self, path: Path, ref: SettingRef) -> None:
        names = list(RuleSettings.model_fields)
        if ref.setting not in names:
            self.report((*path, "setting"), False, f"unknown setting '{ref.setting}'",
                        one_of(names), did_you_mean(ref.setting, names))

    def _owner(self, path: Path, owner: Owner) -> None:
        queues = sorted(self.settings.owners)
        for part in ("queue", "fallback"):
            name = getattr(owner, part)
            if "owners" not in self.invalid_settings and name is not None and name not in queues:
                default = "" if (*path, part) in self.doc.values else " (the action's default)"
                self.report((*path, part), False, f"unknown queue '{name}'{default}",
                            "a name under settings.owners: " + ", ".join(queues),
                            did_you_mean(name, queues))
        self._queue_owner(path, owner)

    def _default_owner(self) -> None:
        value = self.settings.owners.get("default", "")
        if "owners" not in self.invalid_settings and owner_kind(value) == "queue":
            self.report(("settings", "owners", "default"), False,
                        f"the default owner {value!r} is a queue: it gets every task whose event "
                        "names no owner, and only a user can own a task", "a user or a relation",
                        _QUEUE_HINT)

    def _queue_owner(self, path: Path, owner: Owner) -> None:
        """A queue can own a Case (``open_case``), never a task, check-in or draft."""
        action = next((p for p in reversed(path) if p in ACTION_NAMES), None)
        if action in QUEUE_ACTIONS:
            return
        if owner.user and owner_kind(owner.user) == "queue":
            self.report((*path, "user"), False, f"'{owner.user}' is a queue, not a user",
                        "a user's Id or username", _QUEUE_HINT)
        role = owner.queue or owner.fallback  # ``default`` is checked once, in ``_default_owner``
        value = self.settings.owners.get(role or "")
        if role is not None and value is not None and owner_kind(value) == "queue":
            part = "queue" if owner.queue else "fallback"
            where = (*path, part) if (*path, part) in self.doc.values else path
            self.report(where, where == path,
                        f"owner '{role}' is the queue {value!r}: {action or 'this action'} writes "
                        "an activity, which only a user can own", "a user or a relation",
                        _QUEUE_HINT)

    def _spec(self, path: Path, spec: BaseModel, event_type: str | None) -> None:
        template = getattr(spec, "template", None)
        if isinstance(template, str):
            kind = text_kind(path, spec, "template")
            self._template_use(path, template, event_type, kind, isinstance(spec, ApologySpec))
        offer = getattr(spec, "offer", None)
        offers_valid = "offers" not in self.invalid_settings
        if offers_valid and isinstance(offer, str) and offer not in self.settings.offers:
            offers = sorted(self.settings.offers)
            self.report((*path, "offer"), False, f"unknown offer '{offer}'",
                        "a name under settings.offers: " + (", ".join(offers) or "(none yet)"),
                        did_you_mean(offer, offers))
        for_each = getattr(spec, "for_each", None)
        if isinstance(spec, TaskSpec) and isinstance(for_each, str):
            self._for_each(path, spec, for_each, event_type)
        for name in type(spec).model_fields:
            text = getattr(spec, name, None)
            if is_inline_template(name) and isinstance(text, str):
                apology = isinstance(spec, ApologySpec) and name == "subject"
                self._inline((*path, name), text, event_type, text_kind(path, spec, name),
                             apology)
        if isinstance(spec, PublishSpec):
            for key, text in getattr(spec, "fields", {}).items():
                self._inline((*path, "fields", key), text, event_type, "message", False)
        if isinstance(spec, Again) and spec.when is not None and event_type is not None:
            self._fields((*path, "when"), event_type)  # tested against the event that set it

    def _for_each(self, path: Path, spec: TaskSpec, name: str, event_type: str | None) -> None:
        ignored = ignored_for_each(path, spec)
        if ignored is not None:  # the realiser would skip it without a word
            where, instead = ignored
            self.report((*path, "for_each"), True, f"for_each has no effect on {where}",
                        suggestion=instead)
            return
        if event_type is None:
            return
        known = sorted(template_variables(event_type))
        if name not in known:
            self.report((*path, "for_each"), False,
                        f"unknown variable '{name}' for for_each on {event_type} events",
                        "a list variable, e.g. added_experiences", did_you_mean(name, known))

    def _template_use(self, path: Path, name: str, event_type: str | None, kind: TextKind,
                      apology: bool) -> None:
        if name not in self.templates:
            names = sorted(self.templates)
            self.report((*path, "template"), False, f"unknown template '{name}'",
                        f"a file in {self.folder}/: " + (", ".join(names) or "(none found)"),
                        did_you_mean(name, names))
            return
        uses = self.uses.setdefault(name, set())
        if event_type is not None:
            uses.add((event_type, kind))
        if apology:
            self.apologies.add(name)

    def _lint_rules(self, uses: set[tuple[str, TextKind]], apology: bool) -> LintRules:
        # A template rendered as several texts may use only what all of them have.
        variables = (frozenset.intersection(*(template_variables(e, k) for e, k in uses))
                     if uses else None)
        come_back = self.settings.come_back_phrases if apology else []
        return LintRules(variables, self.settings.banned_phrases, come_back)

    def _inline(self, path: Path, text: str, event_type: str | None, kind: TextKind,
                apology: bool) -> None:
        rules = self._lint_rules({(event_type, kind)} if event_type else set(), apology)
        written = path in self.doc.values
        what = label(path, self.doc.data) + ("" if written else " (the default text)")
        for issue in lint_template(text, self.environments.environment(html=False), rules):
            line, column = self.doc.locate_line(path, issue.line)
            self.problems.append(Problem(self.doc.file, line, column, f"{what}: {issue.message}",
                                         issue.expected, issue.suggestion))

    def _template_files(self) -> None:
        for name, source in sorted(self.templates.items()):
            rules = self._lint_rules(self.uses.get(name, set()), name in self.apologies)
            env = self.environments.environment(html=name.endswith(".html.j2"))
            file = posixpath.join(self.folder, name)
            for issue in lint_template(source, env, rules):
                self.problems.append(
                    Problem(file, issue.line, 1, issue.message, issue.expected, issue.suggestion))
