"""The report's charts as static SVG text, drawn with matplotlib's SVG backend (no pyplot state)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.figures import Figures

# Text stays text (smaller, selectable), ids are stable and no creation date is written, so the
# same figures give the same page.
_SVG_STYLE: Any = {"svg.fonttype": "none", "svg.hashsalt": "winback", "font.size": 9}
_ID_REFERENCE = re.compile(r'(\sid="|url\(#|href="#)')
WON, LOST, OPEN, LATE = "#2e7d32", "#c62828", "#90a4ae", "#ef6c00"


def _draw(name: str, paint: Callable[[Axes], None], height: float = 2.8) -> str:
    with mpl.rc_context(_SVG_STYLE):
        fig = Figure(figsize=(5.6, height), layout="constrained")
        ax = fig.add_subplot()
        paint(ax)
        out = io.StringIO()
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    text = text[text.index("<svg"):]  # inline in HTML: no XML declaration or doctype
    # Every chart numbers its elements from 1 (figure_1, patch_1...): one page needs them apart.
    return _ID_REFERENCE.sub(rf"\1{name}-", text)


def _stacked(ax: Axes, groups: list[str], series: Sequence[tuple[str, str, list[int]]],
             horizontal: bool = False) -> None:
    base = [0] * len(groups)
    for label, colour, values in series:
        if horizontal:
            ax.barh(groups, values, left=base, color=colour, label=label)
        else:
            ax.bar(groups, values, bottom=base, color=colour, label=label)
        base = [b + v for b, v in zip(base, values, strict=True)]
    _counts(ax.xaxis if horizontal else ax.yaxis)
    _legend(ax)


def _counts(axis: Any) -> None:
    axis.set_major_locator(MaxNLocator(integer=True))  # plans and complaints come in whole numbers


def _legend(ax: Axes) -> None:
    # Beside the plot, not on it: a swatch over a bar of its own colour would vanish.
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def outcomes_chart(rows: Sequence[Figures]) -> str:
    def paint(ax: Axes) -> None:
        _stacked(ax, [f.group for f in rows], [
            ("won", WON, [f.won for f in rows]), ("lost", LOST, [f.lost for f in rows]),
            ("open", OPEN, [sum(f.open_by_stage.values()) for f in rows])])
        ax.set_ylabel("plans")
        ax.set_title("Plans by outcome")
    return _draw("outcomes", paint)


def by_month_chart(months: Mapping[str, tuple[int, int]]) -> str:
    def paint(ax: Axes) -> None:
        labels = list(months) or ["(none yet)"]
        positions = list(range(len(labels)))
        won = [w for w, _ in months.values()] or [0]
        lost = [lo for _, lo in months.values()] or [0]
        ax.bar([p - 0.2 for p in positions], won, width=0.4, color=WON, label="won")
        ax.bar([p + 0.2 for p in positions], lost, width=0.4, color=LOST, label="lost")
        ax.set_xticks(positions, labels)
        ax.set_ylabel("plans closed")
        ax.set_title("Won and lost, by month closed")
        _counts(ax.yaxis)
        _legend(ax)
    return _draw("by-month", paint)


def sla_chart(rows: Sequence[Figures]) -> str:
    def paint(ax: Axes) -> None:
        _stacked(ax, [f.group for f in rows], [
            ("in SLA", WON, [f.sla_met for f in rows]), ("late", LATE, [f.sla_late for f in rows]),
            ("not yet", OPEN, [f.sla_not_yet for f in rows])], horizontal=True)
        ax.set_xlabel("complaints")
        ax.set_title("Complaints acknowledged within the SLA")
    return _draw("sla", paint)


def suppressions_chart(rows: Sequence[Figures]) -> str:
    totals: dict[str, int] = {}
    for f in rows:
        for reason, count in f.suppressions.items():
            totals[reason] = totals.get(reason, 0) + count
    reasons = sorted(totals, key=lambda r: totals[r])

    def paint(ax: Axes) -> None:
        ax.barh([r if len(r) <= 60 else r[:59] + "…" for r in reasons] or ["(none)"],
                [totals[r] for r in reasons] or [0], color=OPEN)
        ax.set_xlabel("actions not written")
        _counts(ax.xaxis)
        ax.set_title("Suppressed, by reason (rule)")
    return _draw("suppressions", paint, height=0.6 + 0.35 * max(1, len(reasons)))
