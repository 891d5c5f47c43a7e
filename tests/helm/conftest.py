"""The chart, loaded once per session (helm-python-sdk: required in CI, optional locally)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helm.chart import CHART_DIR, ChartUnderTest, helm


@pytest.fixture(scope="session")
def chart() -> Iterator[ChartUnderTest]:
    with helm().Chart.load(CHART_DIR) as loaded:
        yield ChartUnderTest(loaded)
