"""A thread that calls ``sample()`` every few seconds until stopped; a failed sample is skipped."""

from __future__ import annotations

import threading

import structlog


class PeriodicSampler:
    """Subclasses give ``sample()`` and which errors just skip a sample (the values stay as they were)."""

    skipped: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._log = structlog.get_logger(name.replace("-", "."))

    def sample(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except self.skipped as exc:
                self._log.info("sample_skipped", error=repr(exc))
            self._stop.wait(self._interval)
