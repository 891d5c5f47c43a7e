"""``winback report --html FILE``: one self-contained page (inline SVG, no scripts, no links out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from handlers.figures import Figures
from worker.report import charts
from worker.report.render import ROWS

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .75em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(26em, 1fr)); gap: 1em; }
figure { margin: 0; } svg { max-width: 100%; height: auto; }
</style></head>
<body>
<h1>{{ title }}</h1>
<p>{{ period }}; computed {{ generated }} UTC from the plans in the CRM.</p>
<div class="charts">
{% for chart in charts %}<figure>{{ chart }}</figure>
{% endfor %}</div>
<table>
<thead><tr><th>figure</th>{% for f in rows %}<th>{{ f.group }}</th>{% endfor %}</tr></thead>
<tbody>{% for label, cells in table %}<tr><td>{{ label }}</td>
{%- for c in cells %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
</body></html>
"""


def report_html(rows: Sequence[Figures], months: Mapping[str, tuple[int, int]], period: str,
                generated: datetime) -> str:
    env = Environment(autoescape=select_autoescape(default=True))
    svgs = [charts.outcomes_chart(rows), charts.by_month_chart(months), charts.sla_chart(rows),
            charts.suppressions_chart(rows)]
    return env.from_string(_PAGE).render(
        title="Win-back report", period=period, generated=f"{generated:%Y-%m-%d %H:%M}",
        # matplotlib wrote these SVGs from numbers and our own labels, escaped as XML text.
        charts=[Markup(svg) for svg in svgs],  # noqa: S704
        rows=rows, table=[(label, [value(f) for f in rows]) for label, value in ROWS],
    )
