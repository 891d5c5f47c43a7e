"""Problems in a rules file, each at ``file:line:column``, and the words they are written in.

A problem names the thing it is about the way an admin would (``label``), offers the closest
choice (``did_you_mean``) or lists them all (``one_of``). ``handlers.rules.checks`` and
``handlers.rules.pydantic_errors`` (pydantic's validation errors) both report through here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from handlers.errors import ConfigError

Path = tuple[str | int, ...]
Locate = Callable[[Path, bool], tuple[int, int]]  # (path, at the key?) -> (line, column), 1-based


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the rules or a template, where it is, and how to put it right."""

    file: str
    line: int
    column: int
    message: str
    expected: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.suggestion:
            return f"{text} — {self.suggestion}"
        return f"{text} (expected {self.expected})" if self.expected else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RulesInvalidError(ConfigError):
    """The rules file (or a template it uses) is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        count = len(self.problems)
        head = f"the rules are invalid ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([head, *(str(p) for p in self.problems)]))


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None when nothing is close."""
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def one_of(choices: Sequence[str]) -> str:
    return "one of: " + ", ".join(choices)


def node_at(data: Any, path: Path) -> Any:
    """The plain YAML value at ``path``, or None."""
    for seg in path:
        found = (isinstance(data, dict) and seg in data) or (
            isinstance(data, list) and isinstance(seg, int) and seg < len(data))
        if found:
            data = data[seg]
        else:
            return None
    return data


def label(path: Path, data: Any) -> str:
    """How an admin would name the thing at ``path``: ``'subject'``, ``rule 'x'``, ``item 2 of...``."""
    if not path:
        return "the rules file"
    if len(path) == 2 and path[0] == "rules" and isinstance(path[1], int):
        rule_id = node_at(data, (*path, "id"))
        return f"rule '{rule_id}'" if isinstance(rule_id, str) else f"rule {path[1] + 1}"
    last = path[-1]
    if isinstance(last, int):
        return f"item {last + 1} of {label(path[:-1], data)}"
    return f"'{last}'"



class ReferencesInvalidError(RulesInvalidError):
    """Owners or campaigns the rules name that the CRM does not have; said on one line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        super().__init__(problems)
        self.args = ("the rules name what the CRM does not have: "
                     + "; ".join(str(p) for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])
