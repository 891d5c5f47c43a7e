"""The rules on disk: reading the file and its templates, the rule set in force, and safe reload.

A reload is all or nothing. The watcher reads the rules file and every template as one snapshot,
validates it completely, and only then swaps the holder's reference; readers take ``current()``
once per batch, so a message is handled under the old rules or the new ones, never a mix. An
invalid file is refused with the same messages ``winback rules check`` prints, and the old rules
stay in force.

Kubernetes updates a ConfigMap volume by writing a new timestamped directory and renaming the
``..data`` symlink over the old one; the file's path never changes, only what it resolves to. The
watcher therefore compares the *content* it reads through the path (a digest), which catches that
swap, an in-place edit, and a rename over the file alike, and never trusts mtimes alone.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
from prometheus_client import Counter, Info

from handlers.errors import ConfigError, TransientError
from handlers.rules.errors import Problem, RulesInvalidError
from handlers.rules.loader import parse_rules
from handlers.rules.ruleset import RuleSet

PollResult = Literal["unchanged", "applied", "refused"]
_READ_ATTEMPTS = 5  # a snapshot that changes while being read is read again, this many times


@dataclass(frozen=True)
class RulesSnapshot:
    """The rules file and its templates as read at one moment, with a digest of all of it."""

    text: str
    templates: dict[str, str]
    templates_dir: Path
    digest: str


def _templates_dir(path: Path, templates_dir: Path | None) -> Path:
    return templates_dir if templates_dir is not None else path.parent / "templates"


def _generation(path: Path, folder: Path) -> tuple[Any, ...]:
    """What the paths point at right now: a ``..data`` swap or a rewrite changes it."""
    rules = path.resolve()
    stat = rules.stat()
    return rules, stat.st_ino, stat.st_mtime_ns, stat.st_size, folder.resolve()


def _read_templates(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    # Names starting with '.' are Kubernetes' ``..data`` and timestamped directories.
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".j2")
                   and not p.name.startswith(".") and p.is_file())
    return {p.name: p.read_text(encoding="utf-8") for p in files}


def _digest(text: str, templates: dict[str, str]) -> str:
    sha = hashlib.sha256(text.encode())
    for name, source in sorted(templates.items()):
        sha.update(b"\0" + name.encode() + b"\0" + source.encode())
    return sha.hexdigest()


def read_snapshot(path: Path, templates_dir: Path | None = None) -> RulesSnapshot:
    """Read the rules and templates consistently; raises OSError when they cannot be read."""
    folder = _templates_dir(path, templates_dir)
    for attempt in range(1, _READ_ATTEMPTS + 1):
        try:
            before = _generation(path, folder)
            text = path.read_text(encoding="utf-8")
            templates = _read_templates(folder)
            if _generation(path, folder) == before or attempt == _READ_ATTEMPTS:
                return RulesSnapshot(text, templates, folder, _digest(text, templates))
        except FileNotFoundError:
            # Kubernetes deletes the old generation right after the swap: read the new one.
            if attempt == _READ_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _unreadable(path: Path, exc: OSError) -> RulesInvalidError:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return RulesInvalidError([Problem(str(path), 1, 1, f"cannot read the rules: {reason}{where}")])


def _parse(path: Path, snapshot: RulesSnapshot) -> RuleSet:
    return parse_rules(snapshot.text, str(path), snapshot.templates,
                       templates_dir=str(snapshot.templates_dir))


def load_snapshot(path: Path, templates_dir: Path | None = None) -> tuple[RuleSet, RulesSnapshot]:
    """The rules as ``load_rules`` reads them, and the snapshot they were parsed from.

    A ``RulesWatcher`` starts from that snapshot, so an edit made after this read is its first change.
    """
    try:
        snapshot = read_snapshot(path, templates_dir)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    return _parse(path, snapshot), snapshot


def load_rules(path: Path, templates_dir: Path | None = None) -> RuleSet:
    """Read and validate the rules file; templates default to ``templates/`` beside it.

    Raises RulesInvalidError (a ConfigError) listing every problem, unreadable files included.
    """
    return load_snapshot(path, templates_dir)[0]


class RulesHolder:
    """The rule set in force. ``current()`` is one reference read; ``swap()`` replaces it whole."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._lock = threading.Lock()  # orders concurrent swaps; readers never need it

    def current(self) -> RuleSet:
        """The rules in force now. Call once per batch and use that object for the whole batch."""
        return self._rules

    def swap(self, rules: RuleSet) -> RuleSet:
        """Put fully validated ``rules`` in force; returns the rules they replace."""
        with self._lock:
            previous, self._rules = self._rules, rules
        return previous


class RulesMetrics(Protocol):
    """What the watcher updates (``worker.metrics.Metrics`` has both)."""

    rules_info: Info  # winback_rules_info{version, source}
    rules_refused: Counter  # winback_rules_reloads_refused_total


class RulesWatcher:
    """Polls the rules file and templates every ``poll_seconds``; applies valid changes, refuses
    invalid ones with every problem logged. ``poll()`` does one round, for tests and callers that
    schedule it themselves; ``start()``/``stop()`` run it on a daemon thread.

    ``loaded`` is the snapshot the holder's rules came from (``load_snapshot``): anything on disk
    that differs from it is a change, however soon after loading it was made.
    """

    def __init__(self, path: Path, holder: RulesHolder, poll_seconds: float = 2.0, *,
                 loaded: RulesSnapshot, metrics: RulesMetrics | None = None, log: Any = None,
                 templates_dir: Path | None = None,
                 resolve: Callable[[RuleSet], RuleSet] | None = None) -> None:
        self.path, self.holder, self.poll_seconds = path, holder, poll_seconds
        # The CRM's look-up of the owners the rules name (``Crm.resolve_owners``).
        self.resolve = resolve
        self.templates_dir, self.metrics = templates_dir, metrics
        self.log = log if log is not None else structlog.get_logger("winback.rules")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        # Not a fresh read: the file may have changed since the holder's rules were read from it.
        self._seen = loaded.digest

    def poll(self) -> PollResult:
        """Look once; apply a valid change, refuse an invalid one, or report nothing changed."""
        try:
            snapshot = read_snapshot(self.path, self.templates_dir)
        except OSError as exc:
            return self._refuse(f"unreadable: {exc}", _unreadable(self.path, exc))
        if snapshot.digest == self._seen:
            return "unchanged"
        try:
            rules = _parse(self.path, snapshot)
            if self.resolve is not None:
                rules = self.resolve(rules)
        except RulesInvalidError as exc:
            return self._refuse(snapshot.digest, exc)
        except TransientError as exc:  # the CRM is down for now: look again at the next poll
            self.log.warning("rules_owners_lookup_failed", source=str(self.path), error=str(exc))
            return "unchanged"
        except ConfigError as exc:
            return self._refuse(snapshot.digest,
                                RulesInvalidError([Problem(str(self.path), 1, 1, str(exc))]))
        self._seen = snapshot.digest
        previous = self.holder.swap(rules)
        if self.metrics is not None:
            self.metrics.rules_info.info({"version": rules.version, "source": str(self.path)})
        self.log.info("rules_reloaded", version=rules.version, previous_version=previous.version,
                      rules=len(rules.file.rules), source=str(self.path))
        return "applied"

    def _refuse(self, fingerprint: str, exc: RulesInvalidError) -> PollResult:
        if fingerprint == self._seen:
            return "unchanged"  # this very file was refused already: log it once, not every poll
        self._seen = fingerprint
        if self.metrics is not None:
            self.metrics.rules_refused.inc()
        self.log.error("rules_reload_refused", source=str(self.path),
                       version_in_force=self.holder.current().version,
                       problems=[str(p) for p in exc.problems])
        return "refused"

    def start(self) -> None:
        """Poll on a daemon thread until ``stop()``."""
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="winback-rules", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopped.wait(self.poll_seconds):
            self.poll()
