"""JSON through orjson where it writes what the standard library writes; None where it may not."""

from __future__ import annotations

import math
from typing import Any

import orjson

_SCALARS = frozenset({str, int, bool, type(None)})  # written alike by orjson and the stdlib


def fast_json(value: Any) -> bytes | None:
    """``value`` as compact UTF-8 JSON by orjson, or None when the caller's stdlib encoder must
    write it: orjson writes NaN and infinity as null and writes some types the stdlib refuses (an
    enum, a UUID, a datetime), so only ``_plain`` values go to it; and it refuses some the stdlib
    writes (a lone surrogate, an integer over 64 bits, a key that is not text)."""
    if not _plain(value):
        return None
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only dicts, lists, tuples, text, integers, booleans, None and finite
    floats, of exactly those types (no subclasses); a container of scalars only is checked in C."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            items = item.values()
        elif kind is list or kind is tuple:
            items = item
        elif kind is float:
            if not math.isfinite(item):
                return False
            continue
        elif kind in _SCALARS:
            continue
        else:
            return False
        if not _SCALARS.issuperset(map(type, items)):
            stack.extend(items)
    return True
