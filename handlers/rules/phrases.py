"""Finding phrases in text as people write them: whole words, any spacing, curly or straight quotes."""

from __future__ import annotations

import re
from collections.abc import Iterable

# What people type for the same character in a phrase: curly quotes, ellipses, odd spaces.
_SAME = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
                       "\u2026": " "})


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    words = phrase.translate(_SAME).strip(" .").split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    # Whole words only at word edges: "No problem" must not fire on "know problems".
    start = r"(?<!\w)" if re.match(r"\w", words[0]) else ""
    end = r"(?!\w)" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + body + end, re.IGNORECASE)


def find_phrases(source: str, phrases: Iterable[str]) -> list[tuple[int, str]]:
    """``(line, phrase)`` for each phrase found in ``source``, at its first occurrence."""
    text = source.translate(_SAME)
    found = []
    for phrase in phrases:
        pattern = _phrase_pattern(phrase)
        match = pattern.search(text) if pattern else None
        if match:
            found.append((text.count("\n", 0, match.start()) + 1, phrase))
    return found
