"""The one datetime text every adapter writes: UTC, whole seconds (cut, not rounded), ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter

from worker.crm.records import iso

PARSED = TypeAdapter(datetime).validate_python  # an event's times: pydantic's own tzinfo
PARIS = timezone(timedelta(hours=2))


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 11, 22, 10, 5, 9, tzinfo=UTC), "2026-11-22T10:05:09Z"),
    (datetime(2026, 11, 22, 10, 5, 9, 999_999, tzinfo=UTC), "2026-11-22T10:05:09Z"),
    (PARSED("2026-01-02T03:04:05.5Z"), "2026-01-02T03:04:05Z"),
    (PARSED("2026-01-01T01:30:00+02:00"), "2025-12-31T23:30:00Z"),
    (datetime(2026, 3, 1, 0, 0, 0, tzinfo=PARIS), "2026-02-28T22:00:00Z"),
    (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z"),
], ids=["utc", "microseconds-cut", "parsed-utc", "parsed-offset", "offset", "year-999", "last"])
def test_a_moment_is_written_in_utc_to_the_second(moment: datetime, text: str) -> None:
    assert iso(moment) == text


def test_a_naive_moment_is_local_time() -> None:
    naive = datetime(2026, 6, 1, 12, 0, 0)
    assert iso(naive) == naive.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def test_no_moment_is_none() -> None:
    assert iso(None) is None
