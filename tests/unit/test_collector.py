"""A worker process's collector: start-up frozen out of its passes, garbage in cycles still
collected. Run in a child process: freezing this test run's objects would outlive the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

CHILD = """
import gc, weakref
from worker.app import YOUNG_COLLECTION_AFTER, tune_collector

class Node:
    pass

tune_collector()
frozen = gc.get_freeze_count()
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle: only the collector can free it
gone = weakref.ref(a)
del a, b
kept = [[] for _ in range(YOUNG_COLLECTION_AFTER + 1)]  # enough for one young collection
print(frozen > 0, gc.get_threshold()[0] == YOUNG_COLLECTION_AFTER, gone() is None)
"""


def test_start_up_is_frozen_and_a_cycle_is_still_collected_in_its_time() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["True", "True", "True"]
