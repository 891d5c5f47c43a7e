"""A loaded, validated rule set: the parsed file plus its templates, ready for handlers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from handlers.owners import Reference
from handlers.rules.model import Rule, RuleFile, RuleSettings
from handlers.templates import Templates


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

    def with_owner_ids(self, owner_ids: Mapping[str, str]) -> RuleSet:
        return replace(self, owner_ids=dict(owner_ids))

    @property
    def version(self) -> str:
        return self.file.version

    @property
    def settings(self) -> RuleSettings:
        return self.file.settings

    def rules_for(self, event_type: str) -> list[Rule]:
        """The rules for a full event type (``crm.customer.lapsed``), in file order."""
        return [r for r in self.file.rules if r.event_type == event_type]
