"""structlog set-up: JSON lines off a TTY, readable console output on one."""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, Literal

import orjson
import structlog

_SECRET_KEYS = ("password", "token", "secret", "authorization", "amqp_url", "private_key")
_SECRET = re.compile("|".join(_SECRET_KEYS), re.IGNORECASE)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A last line of defence: code never logs secrets on purpose, and this keeps it so.
    for key in _secret_keys(tuple(event)):
        event[key] = "[redacted]"
    return event


@functools.lru_cache(maxsize=1024)
def _secret_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Which of a line's keys look secret. Every message is logged and its lines come in a few
    shapes, so the verdict is kept per set of keys (it depends on nothing else): a regex search
    per key of each line was a quarter of the cost of logging one."""
    return tuple(key for key in keys if _SECRET.search(key))


# orjson renders what the line holds (str, numbers, None, dicts, lists, tuples) as json would, and
# hands everything else to the renderer's ``default`` as json does: datetimes and dataclasses too,
# which it would otherwise render itself; keys that are not strings become strings, as in json.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


@functools.lru_cache(maxsize=4)
def _encoder(default: Callable[[Any], Any]) -> json.JSONEncoder:
    return json.JSONEncoder(default=default)


def _dumps(event: Any, default: Callable[[Any], Any]) -> str:
    """The line's JSON, compact, by orjson: the same fields in the same order as ``json.dumps``
    wrote, at a fifth of its cost (a line is logged per message). What orjson refuses (an int
    past 64 bits, a string that is not valid UTF-8) is written by the json encoder, as before."""
    try:
        return orjson.dumps(event, default=default, option=_ORJSON).decode()
    except orjson.JSONEncodeError:
        return _encoder(default).encode(event)


def _stderr(*_args: Any) -> structlog.PrintLogger:
    # sys.stderr as it is at each log call, not at configure time: a command run inside a test
    # runner must not keep writing to the runner's stream after it returned.
    return structlog.PrintLogger(sys.stderr)


def configure(fmt: Literal["auto", "json", "console"] = "auto", level: str = "info") -> None:
    """Configure structlog once, at start-up."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps) if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.dict_tracebacks if as_json else structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr,
        cache_logger_on_first_use=False,
    )
