"""A loaded, validated rule set: the parsed file plus its templates, ready for handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cached_property
from typing import Any, TypeVar

from handlers.owners import Reference
from handlers.rules.conditions import Evaluator, compiled
from handlers.rules.model import Duration, Rule, RuleFile, RuleSettings
from handlers.templates import Templates

T = TypeVar("T")


@dataclass(frozen=True)
class RuleSet:
    file: RuleFile
    templates: Templates
    source: str = "<rules>"
    # What the rules name in the CRM (owners, campaigns), each with its file:line.
    references: tuple[Reference, ...] = ()
    # Owner role -> user or queue id, as the CRM resolved it when the rules were loaded; an owner
    # written in an action (``{user: …}``) is kept as ``user:<as written>``.
    owner_ids: Mapping[str, str] = field(default_factory=dict)
    # What realisers make of this rule set's specs, by the spec's identity (``made_once``).
    _made: dict[int, tuple[object, Any]] = field(default_factory=dict, init=False, repr=False,
                                                 compare=False)
    _durations: dict[int, tuple[Duration, timedelta]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _evaluators: dict[int, tuple[Rule, Evaluator]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def with_owner_ids(self, owner_ids: Mapping[str, str]) -> RuleSet:
        return replace(self, owner_ids=dict(owner_ids))

    # Read several times per rule and action: kept on the rule set after the first read (the
    # file never changes; a changed rule set is a new RuleSet).
    @cached_property
    def version(self) -> str:
        return self.file.version

    @cached_property
    def settings(self) -> RuleSettings:
        return self.file.settings

    def made_once(self, spec: object, make: Callable[[], T]) -> T:
        """``make()`` for ``spec``, one of this rule set's own specs, made on first use and kept
        with the rule set: what a realiser builds from a spec alone (the ``TaskSpec`` an offer
        becomes), not per event. A reload is a new rule set, so it starts afresh; the entry
        holds ``spec``, so its identity cannot pass to another object while it is kept."""
        entry = self._made.get(id(spec))
        if entry is None or entry[0] is not spec:
            entry = self._made[id(spec)] = (spec, make())
        return entry[1]

    def evaluator(self, rule: Rule) -> Evaluator:
        """``rule.when`` as one function (``compiled``): walked once per rule set."""
        entry = self._evaluators.get(id(rule))
        if entry is None or entry[0] is not rule:  # the entry holds it, as made_once's do
            entry = self._evaluators[id(rule)] = (rule, compiled(rule.when))
        return entry[1]

    def timedelta_of(self, duration: Duration) -> timedelta:
        """``duration`` of one of this rule set's specs, with this rule set's SLA: once each."""
        entry = self._durations.get(id(duration))
        if entry is None or entry[0] is not duration:  # the entry holds it, as made_once's do
            entry = self._durations[id(duration)] = (
                duration, duration.to_timedelta(self.settings.sla_minutes))
        return entry[1]

    @cached_property
    def settings_view(self) -> Mapping[str, Any]:
        """``settings.model_dump()``, what templates read as ``settings``: dumped once per rule
        set, not per event. Templates cannot change it (the sandbox is immutable)."""
        return self.file.settings.model_dump()

    @cached_property
    def _by_type(self) -> Mapping[str, tuple[Rule, ...]]:
        by_type: dict[str, list[Rule]] = {}
        for rule in self.file.rules:
            by_type.setdefault(rule.event_type, []).append(rule)
        return {event_type: tuple(rules) for event_type, rules in by_type.items()}

    def rules_for(self, event_type: str) -> list[Rule]:
        """The rules for a full event type (``crm.customer.lapsed``), in file order."""
        return list(self._by_type.get(event_type, ()))
