"""The adaptive batch size: full batches from a deep queue, no added wait on a quiet one."""

from __future__ import annotations

import pytest

from worker.processing import batch_limits


@pytest.mark.parametrize(("waiting", "size", "wait", "expected"), [
    (1, 100, 0.05, (100, 0.0)),      # quiet: the one event goes at once, no latency added
    (0, 100, 0.05, (100, 0.0)),
    (500, 100, 0.05, (100, 0.0)),    # deep: a full batch, nothing to wait for
    (100, 100, 0.05, (100, 0.0)),
    (50, 100, 0.05, (100, 0.025)),   # filling: waits in proportion to how full it is
    (10, 100, 0.05, (100, 0.005)),
    (2, 100, 0.0, (100, 0.0)),       # WINBACK_BATCH_WAIT_MS=0: never waits
    (3, 1, 0.05, (1, 0.0)),          # batches of one
])
def test_how_big_a_batch_may_be_and_how_long_it_waits(
    waiting: int, size: int, wait: float, expected: tuple[int, float]
) -> None:
    take, waits = batch_limits(waiting, size, wait)
    assert (take, round(waits, 6)) == expected
