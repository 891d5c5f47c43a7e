"""``winback report --html``: the page renders in a real headless Chromium with no console errors."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from tests.browser.chromium import render
from tests.integration.test_report_cli import env  # noqa: F401 - the fixture, a CRM with three plans
from worker.cli import cli


def test_a_page_with_a_script_error_is_caught(tmp_path: Path) -> None:
    # The check itself must be able to fail: a page that logs an error and throws is reported.
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><p>x</p><script>console.error("boom");'
                    "missing();</script></body></html>")
    console = render(page).console
    assert "boom" in console
    assert any("ReferenceError" in message for message in console)


def test_the_html_report_renders_its_charts_with_no_console_messages(
    env: dict[str, str], tmp_path: Path  # noqa: F811 - the fixture imported above
) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--html", str(page), "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    html = page.read_text()
    # Self-contained: nothing is fetched, so it opens offline and survives being attached to a mail.
    assert not re.search(r"""(src|href)=["'](?!#)""", html)
    # Four SVGs in one document: an id used twice would draw one chart's clip paths in another.
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    rendered = render(page)
    assert rendered.console == []
    assert rendered.dom.count("<svg") == 4
    assert "Complaints acknowledged within the SLA" in rendered.dom
    assert "SLA attainment" in rendered.dom
