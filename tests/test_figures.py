import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from mixlib.chapters.figures import (
    ACCURACY_POINTS,
    ALL_NOT_RESOLVED,
    ECE_POINTS,
    NO_COMPARISON,
    TIME_RATIO,
    VERDICT_COLOURS,
    Question,
    compact_table,
    forest_plot,
    save_png,
)
from mixlib.chapters.scores import label_in_header
from mixlib.chapters.statistics import compare_with_reference, comparison_frame, correct

NAN = float("nan")


def comparison(rows: dict[str, tuple]) -> pd.DataFrame:
    """A comparison table as `statistics.comparison_frame` makes it, from (estimate, low, high,
    detectable, verdict) per configuration."""
    frame = pd.DataFrame(
        [
            {
                "estimate": estimate,
                "low": low,
                "high": high,
                "confidence": 0.975,
                "p_value": 0.01,
                "adjusted_p": 0.02,
                "seeds": 3,
                "detectable": detectable,
                "verdict": verdict,
            }
            for estimate, low, high, detectable, verdict in rows.values()
        ],
        index=list(rows),
    )
    return frame


ACCURACY = comparison(
    {
        "mixup": (0.010, -0.005, 0.025, 0.02, "no detectable difference"),
        "cutmix": (0.031, 0.012, 0.050, 0.02, "better"),
        "cutout": (-0.040, -0.060, -0.020, 0.02, "worse"),
    }
)
ONE_SEED = comparison({"mixup": (0.02, NAN, NAN, NAN, "not resolved")})


def panel_axes(figure):
    """The figure's panels, without the legend."""
    return [axis for axis in figure.axes if axis.get_title(loc="left")]


def interval_segments(axis) -> dict[str, tuple[float, float]]:
    """Each drawn interval bar as (low, high), keyed by its row's configuration name."""
    labels = {tick.get_position()[1]: tick.get_text() for tick in axis.get_yticklabels()}
    segments = {}
    for collection in axis.collections:
        for (x0, y0), (x1, _) in collection.get_segments():
            segments[labels[round(y0)]] = (x0, x1)
    return segments


def test_rows_are_sorted_by_estimate_largest_on_top():
    axis = panel_axes(
        forest_plot({"Test accuracy (pts)": ACCURACY}, {"Test accuracy (pts)": ACCURACY_POINTS})
    )[0]
    bottom_to_top = [label.get_text() for label in axis.get_yticklabels()]
    assert bottom_to_top == ["cutout", "mixup", "cutmix"]


def test_intervals_are_drawn_in_the_questions_unit():
    axis = panel_axes(forest_plot({"acc": ACCURACY}, {"acc": ACCURACY_POINTS}))[0]
    segments = interval_segments(axis)
    assert segments["cutmix"] == pytest.approx((1.2, 5.0))
    assert segments["cutout"] == pytest.approx((-6.0, -2.0))


@pytest.mark.parametrize("name", ["mixup", "cutmix", "cutout"])
def test_each_interval_is_coloured_by_its_verdict(name):
    axis = panel_axes(forest_plot({"acc": ACCURACY}))[0]
    labels = [label.get_text() for label in axis.get_yticklabels()]
    colours = {labels[round(c.get_segments()[0][0][1])]: c.get_color()[0] for c in axis.collections}
    expected = VERDICT_COLOURS[ACCURACY.loc[name, "verdict"]]
    assert mcolors.to_hex(colours[name]) == mcolors.to_hex(expected)


@pytest.mark.parametrize(
    ("question", "scale", "null"),
    [(ACCURACY_POINTS, "linear", 0.0), (TIME_RATIO, "log", 1.0)],
)
def test_null_line_and_axis_scale(question, scale, null):
    table = comparison({"cutmix": (1.10, 1.02, 1.19, 1.08, "worse")}) if question.ratio else ACCURACY.iloc[:1]
    axis = panel_axes(forest_plot({"panel": table}, {"panel": question}))[0]
    assert axis.get_xscale() == scale
    vertical = [line for line in axis.lines if np.ptp(line.get_xdata()) == 0 and len(line.get_xdata()) == 2]
    assert [line.get_xdata()[0] for line in vertical] == [null]


@pytest.mark.parametrize(
    ("question", "detectable", "band"),
    [(ACCURACY_POINTS, 0.02, (-2.0, 2.0)), (TIME_RATIO, 1.25, (0.8, 1.25))],
)
def test_detectable_difference_is_a_band_around_the_null(question, detectable, band):
    table = comparison({"cutmix": (1.1, 1.05, 1.15, detectable, "worse")})
    axis = panel_axes(forest_plot({"panel": table}, {"panel": question}))[0]
    (bar,) = axis.patches
    assert (bar.get_x(), bar.get_x() + bar.get_width()) == pytest.approx(band)


@pytest.mark.parametrize(
    ("table", "reasons", "message"),
    [
        (ACCURACY.iloc[:0], None, NO_COMPARISON),
        (ONE_SEED, None, ALL_NOT_RESOLVED),
        (ACCURACY.iloc[:0], {"panel": "No boxes in this dataset."}, "No boxes in this dataset."),
    ],
)
def test_an_unanswerable_panel_says_why_in_place(table, reasons, message):
    figure = forest_plot({"answered": ACCURACY, "panel": table}, reasons=reasons)
    answered, unanswered = panel_axes(figure)
    assert [text.get_text() for text in unanswered.texts] == [message]
    assert not unanswered.collections and not answered.texts


def test_a_not_resolved_row_beside_resolved_ones_is_a_hollow_point_without_interval():
    table = pd.concat([ACCURACY, ONE_SEED.rename(index={"mixup": "fmix"})])
    axis = panel_axes(forest_plot({"acc": table}, {"acc": ACCURACY_POINTS}))[0]
    assert "fmix" not in interval_segments(axis)
    hollow = [line for line in axis.lines if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and hollow[0].get_xdata()[0] == pytest.approx(2.0)


def test_legend_names_the_verdicts_shown_and_the_band():
    figure = forest_plot({"acc": ACCURACY, "one seed": ONE_SEED})
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["better", "worse", "no detectable difference", "not resolved"] + [
        "smaller than the detectable difference"
    ]


def test_comparisons_of_the_statistics_module_plot_as_they_are():
    runs = pd.DataFrame(
        {
            "configuration": ["baseline"] * 3 + ["cutmix"] * 3,
            "seed": [0, 1, 2] * 2,
            "epoch_seconds": [10.0, 11.0, 10.5, 12.1, 13.0, 12.8],
        }
    )
    ratio = compare_with_reference(runs, "epoch_seconds", "baseline", "lower", log_scale=True)
    accuracy = comparison_frame(correct({}))
    figure = forest_plot({"time": ratio, "accuracy": accuracy}, {"time": TIME_RATIO})
    time_axis, accuracy_axis = panel_axes(figure)
    low, high = interval_segments(time_axis)["cutmix"]
    assert low == pytest.approx(ratio.loc["cutmix", "low"]) and high == pytest.approx(
        ratio.loc["cutmix", "high"]
    )
    assert [text.get_text() for text in accuracy_axis.texts] == [NO_COMPARISON]


@pytest.mark.parametrize(
    ("row", "question", "cell"),
    [
        ((0.031, 0.012, 0.050, 0.02, "better"), ACCURACY_POINTS, "+3.1 [+1.2, +5.0] better"),
        (
            (-0.0012, -0.0051, 0.0031, 0.004, "no detectable difference"),
            ECE_POINTS,
            "-0.12 [-0.51, +0.31] no detectable difference",
        ),
        ((1.0523, 1.0114, 1.0947, 1.03, "worse"), TIME_RATIO, "1.05x [1.01x, 1.09x] worse"),
        ((0.02, NAN, NAN, NAN, "not resolved"), ACCURACY_POINTS, "+2.0, not resolved"),
        ((NAN, NAN, NAN, NAN, "not resolved"), ACCURACY_POINTS, "–, not resolved"),
        ((3.4, 1.0, 5.8, 2.0, "higher"), Question(digits=2), "+3.40 [+1.00, +5.80] higher"),
    ],
)
def test_compact_cell_text(row, question, cell):
    table = compact_table({"q": comparison({"cutmix": row})}, {"q": question})
    assert table.loc["cutmix", "q"] == cell


def test_compact_table_is_configuration_by_question():
    time = comparison({"cutout": (0.98, 0.9, 1.07, 1.1, "no detectable difference")})
    table = compact_table({"accuracy": ACCURACY, "time": time}, {"time": TIME_RATIO})
    assert list(table.columns) == ["accuracy", "time"]
    assert list(table.index) == ["mixup", "cutmix", "cutout"]
    assert table.loc["cutmix", "time"] == "–"  # no comparison of that configuration for the question
    assert table.loc["cutout", "time"] == "0.980x [0.900x, 1.07x] no detectable difference"
    header = table.to_html().split("</thead>")[0]
    assert header.count("<tr") == 1 and "<th>configuration</th>" in header  # one header row


def test_save_png_writes_a_png_into_new_folders(tmp_path):
    path = save_png(forest_plot({"acc": ACCURACY}), tmp_path / "figures" / "findings.png", dpi=50)
    assert path == tmp_path / "figures" / "findings.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_named_index_moves_into_the_header_row_and_a_two_level_one_stays():
    frame = pd.DataFrame({"value": [1, 2]}, index=pd.Index(["a", "b"], name="parameter"))
    shown = label_in_header(frame)
    assert shown.index.name is None and shown.columns.name == "parameter"
    assert shown["value"].tolist() == [1, 2]
    two_levels = frame.set_index(pd.MultiIndex.from_tuples([("a", 0), ("b", 1)], names=["c", "seed"]))
    assert label_in_header(two_levels) is two_levels
