"""A loaded, validated rule set: the parsed file plus its templates, ready for handlers."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.rules.model import Rule, RuleFile, RuleSettings
from handlers.templates import Templates


@dataclass(frozen=True)
class RuleSet:
    file: RuleFile
    templates: Templates
    source: str = "<rules>"

    @property
    def version(self) -> str:
        return self.file.version

    @property
    def settings(self) -> RuleSettings:
        return self.file.settings

    def rules_for(self, event_type: str) -> list[Rule]:
        """The rules for a full event type (``crm.customer.lapsed``), in file order."""
        return [r for r in self.file.rules if r.event_type == event_type]
