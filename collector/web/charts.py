"""A chart is one value: its labels and series render both the SVG and the CSV, so the two never differ.

pygal draws the SVG on the server, from the installed package: the page needs no script and no other
host (pygal's optional tooltip script, which it would link from a CDN, is switched off with `js=[]`,
and its inline config script is cut out).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import pygal
from pygal.style import Style

Kind = Literal["bar", "line", "dot"]
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#999",
    colors=("#1f6fb2", "#e08a1e", "#3a9d5d", "#b23a48", "#7d5ba6", "#888888", "#2b9bb3"),
    font_family="sans-serif",
)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float | None, ...]
    band: bool = False  # a bound of the series before it (the 80 % band): drawn thin and dashed


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # the URL slug of its CSV
    title: str
    kind: Kind
    label_name: str  # the CSV header of the labels column
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = ""

    def __post_init__(self) -> None:
        for s in self.series:
            if len(s.values) != len(self.labels):
                raise ValueError(
                    f"chart {self.key}: series {s.name} has {len(s.values)} values, {len(self.labels)} labels"
                )

    @property
    def empty(self) -> bool:
        return not self.labels or all(v is None for s in self.series for v in s.values)

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([self.label_name, *(s.name for s in self.series)])
        for i, label in enumerate(self.labels):
            writer.writerow(
                [label, *("" if s.values[i] is None else _plain(s.values[i]) for s in self.series)]
            )
        return buffer.getvalue()

    def svg(self) -> str:
        return _svg(self)


@lru_cache(maxsize=256)
def _svg(c: Chart) -> str:
    """Drawn once per distinct chart (a chart is a hashable value): pygal takes tens of ms a chart,
    and many people open the same pages."""
    chart = _CHARTS[c.kind](
        js=[],
        disable_xml_declaration=True,
        style=STYLE,
        width=900,
        height=320,
        show_legend=len(c.series) > 1 or c.kind == "dot",
        legend_at_bottom=True,
        x_label_rotation=30 if len(c.labels) > 12 else 0,
        show_minor_x_labels=len(c.labels) <= 31,
        show_dots=len(c.labels) <= 48 or c.kind == "dot",  # a dot per point of a long curve is slow
        x_labels_major_count=16,
        truncate_label=-1,
        print_values=False,
        no_data_text="no data in this range",
        y_title=c.unit or None,
        margin=8,
    )
    chart.x_labels = list(c.labels)
    for s in c.series:
        chart.add(s.name, list(s.values), **(_BAND if s.band else {}))
    # pygal always writes an inline <script> with its tooltip config: without the tooltip script it
    # does nothing, and the pages' CSP (no inline script) would log each as a blocked script.
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _plain(value: float | None) -> str:
    assert value is not None
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}".rstrip("0")


_BAND: dict[str, object] = {"stroke_style": {"width": 1, "dasharray": "5, 4"}}
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)
_CHARTS = {"bar": pygal.Bar, "line": pygal.Line, "dot": pygal.Dot}
