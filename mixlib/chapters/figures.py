"""The findings at a glance: a forest plot of every configuration's paired difference from its
reference, one panel per question, and the same numbers as one compact table.

Both read the comparison tables of `mixlib.chapters.statistics.comparison_frame` (index: configuration;
columns `estimate`, `low`, `high`, `confidence`, `p_value`, `adjusted_p`, `seeds`, `detectable`,
`verdict`), as the chapters make them, so the figure, the table and the sentences of the book never
disagree. Figures are `matplotlib.figure.Figure` objects made without pyplot, so a notebook shows one
with `display(figure)` or `myst_nb.glue(...)` and nothing is left open in pyplot's global state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator

from mixlib.chapters.scores import label_in_header
from mixlib.chapters.statistics import MIN_PAIRED_SEEDS, NO_DIFFERENCE, NOT_RESOLVED


@dataclass(frozen=True)
class Question:
    """How the estimates of one question are shown.

    `scale` turns a stored value into the shown one (100 for accuracy stored as a fraction and shown in
    points); a `ratio` (an epoch time over the baseline's) is drawn on a log axis around 1 and written
    with three significant digits, a difference around 0 with `digits` decimals.
    """

    scale: float = 1.0
    digits: int = 1
    ratio: bool = False

    @property
    def null(self) -> float:
        return 1.0 if self.ratio else 0.0

    def shown(self, value: float) -> float:
        """A stored estimate or bound in the unit of the figure (ratios have no unit to scale)."""
        return value if self.ratio else value * self.scale

    def text(self, value: float) -> str:
        if self.ratio:
            return f"{value:#.3g}x"
        return f"{value * self.scale:+.{self.digits}f}"

    def band(self, detectable: float) -> tuple[float, float]:
        """The shown interval around the null in which a true difference would likely be missed."""
        if self.ratio:  # `detectable` is a factor: as far below 1 as above it on the log axis
            return 1.0 / detectable, detectable
        return -detectable * self.scale, detectable * self.scale


# the shipped questions of the findings page, in the precision the book shows them with
ACCURACY_POINTS = Question(scale=100.0, digits=1)
ECE_POINTS = Question(scale=100.0, digits=2)
LOCALISATION_POINTS = Question(scale=1.0, digits=1)  # MaxBoxAccV2 is stored in percent already
TIME_RATIO = Question(ratio=True)

# colour-blind-safe pairs from the Okabe-Ito palette; 'no difference' is grey so that the reader's eye
# goes to the verdicts that say something
VERDICT_COLOURS = {
    "better": "#009E73",
    "worse": "#D55E00",
    "higher": "#0072B2",
    "lower": "#CC79A7",
    NO_DIFFERENCE: "#555555",
    NOT_RESOLVED: "#999999",
}
BAND_COLOUR = "#E8E8E8"
PANEL_WIDTH_INCHES = 7.0
ROW_HEIGHT_INCHES = 0.32
EMPTY_PANEL_INCHES = 0.9
NO_COMPARISON = "No configuration to compare with the reference."
ALL_NOT_RESOLVED = f"Not resolved: every configuration has fewer than {MIN_PAIRED_SEEDS} paired seeds."


def ordered_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows from the smallest estimate to the largest, which matplotlib draws bottom to top; rows
    without an estimate last (at the bottom)."""
    return table.sort_values("estimate", ascending=False, na_position="last").iloc[::-1]


def unanswered(table: pd.DataFrame) -> str | None:
    """Why a table can draw no interval, or None when at least one row has one."""
    if table.empty:
        return NO_COMPARISON
    if (table["verdict"] == NOT_RESOLVED).all():
        return ALL_NOT_RESOLVED
    return None


def panel_height(table: pd.DataFrame) -> float:
    return EMPTY_PANEL_INCHES if unanswered(table) else 0.6 + ROW_HEIGHT_INCHES * len(table)


def draw_message(axis: Axes, title: str, message: str) -> None:
    """An unanswerable question keeps its panel, which says why in place of the rows."""
    axis.set_title(title, loc="left", fontsize=10)
    axis.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, wrap=True, transform=axis.transAxes)
    axis.set_xticks([])
    axis.set_yticks([])


def draw_rows(axis: Axes, title: str, table: pd.DataFrame, question: Question) -> None:
    """One row per configuration: its band of undetectable differences, its corrected interval and
    its estimate, coloured by verdict; a line at no difference."""
    rows = ordered_rows(table)
    positions = np.arange(len(rows))
    for position, (_, row) in zip(positions, rows.iterrows(), strict=True):
        colour = VERDICT_COLOURS.get(row["verdict"], VERDICT_COLOURS[NO_DIFFERENCE])
        if np.isfinite(row["detectable"]):
            low, high = question.band(row["detectable"])
            axis.barh(position, high - low, left=low, height=0.7, color=BAND_COLOUR, zorder=0)
        if row["verdict"] == NOT_RESOLVED:  # one seed: an estimate but no interval, drawn hollow
            if np.isfinite(row["estimate"]):
                axis.plot(question.shown(row["estimate"]), position, "o", mfc="white", mec=colour, zorder=3)
            continue
        low, high = question.shown(row["low"]), question.shown(row["high"])
        axis.hlines(position, low, high, color=colour, linewidth=2.2, zorder=2)
        axis.plot(question.shown(row["estimate"]), position, "o", color=colour, zorder=3)
    axis.axvline(question.null, color="black", linewidth=0.9, zorder=1)
    if question.ratio:
        axis.set_xscale("log")
        # a log locator puts one tick per decade: none at all inside the few percent a time ratio spans
        axis.xaxis.set_major_locator(MaxNLocator(nbins=5))
        axis.xaxis.set_major_formatter(lambda value, _: f"{value:.3g}x")
        axis.xaxis.set_minor_locator(NullLocator())
    axis.set_yticks(positions, [str(name) for name in rows.index], fontsize=8)
    axis.set_ylim(-0.6, len(rows) - 0.4)
    axis.set_title(title, loc="left", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    axis.tick_params(axis="x", labelsize=8)


def legend_handles(tables: Mapping[str, pd.DataFrame]) -> list[Artist]:
    """A handle for every verdict the figure shows, and for the band of undetectable differences."""
    shown = {verdict for table in tables.values() for verdict in table["verdict"]}
    handles = [
        Line2D([], [], color=colour, marker="o", linewidth=2.2, label=verdict)
        for verdict, colour in VERDICT_COLOURS.items()
        if verdict in shown
    ]
    if any(table["detectable"].notna().any() for table in tables.values()):
        handles.append(Patch(color=BAND_COLOUR, label="smaller than the detectable difference"))
    return handles


def forest_plot(
    tables: Mapping[str, pd.DataFrame],
    questions: Mapping[str, Question] | None = None,
    reasons: Mapping[str, str] | None = None,
    width: float = PANEL_WIDTH_INCHES,
) -> Figure:
    """One panel per question (the keys of `tables`, used as panel titles), one row per configuration
    sorted by estimate: the Holm-corrected interval and the estimate coloured by verdict, the line of no
    difference (0, or 1 on a ratio's log axis) and a grey band of +- the detectable difference.

    `questions` gives each panel's `Question` (default: a difference of scale 1, one decimal). A panel
    whose table is empty or has no resolved row says why in place: `reasons[title]` where given (e.g.
    'no boxes in this dataset'), else the generic reason.
    """
    questions, reasons = questions or {}, reasons or {}
    heights = [panel_height(table) for table in tables.values()]
    figure = Figure(figsize=(width, sum(heights) + 0.5), layout="constrained")
    axes = figure.subplots(len(tables), 1, squeeze=False, height_ratios=heights)[:, 0]
    for axis, (title, table) in zip(axes, tables.items(), strict=True):
        message = unanswered(table)
        if message:
            draw_message(axis, title, reasons.get(title, message))
        else:
            draw_rows(axis, title, table, questions.get(title, Question()))
    handles = legend_handles(tables)
    if handles:  # one row for a few entries, else two rows (matplotlib fills the legend column by column)
        columns = len(handles) if len(handles) <= 3 else min(3, math.ceil(len(handles) / 2))
        figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8, frameon=False)
    return figure


def compact_cell(row: pd.Series, question: Question) -> str:
    """'estimate [low, high] verdict' for one configuration and question."""
    if row["verdict"] == NOT_RESOLVED:
        estimate = question.text(row["estimate"]) if np.isfinite(row["estimate"]) else "–"
        return f"{estimate}, {NOT_RESOLVED}"
    low, high = question.text(row["low"]), question.text(row["high"])
    return f"{question.text(row['estimate'])} [{low}, {high}] {row['verdict']}"


def compact_cells(table: pd.DataFrame, question: Question) -> pd.Series:
    """`compact_cell` of every row of a comparison table, indexed by configuration."""
    return pd.Series(
        [compact_cell(row, question) for _, row in table.iterrows()], index=table.index, dtype=object
    )


def compact_table(
    tables: Mapping[str, pd.DataFrame], questions: Mapping[str, Question] | None = None
) -> pd.DataFrame:
    """Configuration x question: each cell the estimate, its corrected interval and the verdict, in
    the question's precision; '–' where a configuration has no comparison for that question."""
    questions = questions or {}
    columns = {
        title: compact_cells(table, questions.get(title, Question())) for title, table in tables.items()
    }
    order = list(dict.fromkeys(name for table in tables.values() for name in table.index))
    frame = pd.DataFrame(columns, index=pd.Index(order, name="configuration"), columns=list(tables))
    return label_in_header(frame.fillna("–"))


def save_png(figure: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write `figure` as a PNG at `path` (folders made as needed) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return path
