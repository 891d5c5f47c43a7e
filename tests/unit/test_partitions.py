"""How replicas share the partitions out: each one's share, and which partition goes next."""

from __future__ import annotations

import pytest

from worker.partitions import fair_share, to_hand_over


@pytest.mark.parametrize(("partitions", "replicas", "share"), [
    (8, 1, 8), (8, 2, 4), (8, 3, 3), (8, 8, 1), (8, 12, 1), (1, 2, 1), (8, 0, 8)])
def test_each_replicas_share_of_the_partitions(partitions: int, replicas: int, share: int) -> None:
    assert fair_share(partitions, replicas) == share


@pytest.mark.parametrize(("active", "share", "next_one"), [
    ([0, 1, 2, 3, 4, 5, 6, 7], 4, 7),  # over its share: the highest goes first
    ([0, 1, 2, 3], 4, None),          # at its share: keeps them
    ([], 4, None),                    # quiet partitions are nobody's worry
    ([2, 5], 1, 5),
])
def test_which_partition_a_replica_hands_over_next(active: list[int], share: int,
                                                  next_one: int | None) -> None:
    assert to_hand_over(active, share) == next_one
