"""structlog set-up: JSON lines off a TTY, readable console output on one."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEYS = ("password", "token", "secret", "authorization", "amqp_url", "private_key")
# One search per key (every message is logged, so this runs for each key of each line).
_SECRET = re.compile("|".join(_SECRET_KEYS), re.IGNORECASE)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A last line of defence: code never logs secrets on purpose, and this keeps it so.
    for key in [k for k in event if _SECRET.search(k)]:
        event[key] = "[redacted]"
    return event


def _stderr(*_args: Any) -> structlog.PrintLogger:
    # sys.stderr as it is at each log call, not at configure time: a command run inside a test
    # runner must not keep writing to the runner's stream after it returned.
    return structlog.PrintLogger(sys.stderr)


def configure(fmt: Literal["auto", "json", "console"] = "auto", level: str = "info") -> None:
    """Configure structlog once, at start-up."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
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
