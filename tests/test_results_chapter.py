import pandas as pd
import pytest

from mixlib.chapters.results import (
    collect_runs,
    details_table,
    detectable_statement,
    headline_table,
    runs_table,
    summarise,
)
from mixlib.chapters.scores import NO_BREAK
from mixlib.runs import run_folder

from helpers import write_run_folder

PM = f"{NO_BREAK}±{NO_BREAK}"  # how a table shows mean ± std


def runs(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "configuration",
            "method",
            "seed",
            "accuracy",
            "macro_f1",
            "ece",
            "macro_fpr",
            "epoch_seconds",
        ],
    )


def test_mean_spread_and_paired_verdicts():
    frame = runs(
        [
            ("baseline", "none", 0, 0.60, 0.6, 0.10, 0.04, 10.0),
            ("baseline", "none", 1, 0.62, 0.6, 0.12, 0.04, 12.0),
            ("big-gain", "mixup", 0, 0.80, 0.8, 0.10, 0.02, 11.0),
            ("big-gain", "mixup", 1, 0.81, 0.8, 0.12, 0.02, 11.0),
            ("noisy", "cutmix", 0, 0.58, 0.5, 0.10, 0.05, 22.0),
            ("noisy", "cutmix", 1, 0.66, 0.7, 0.12, 0.03, 22.0),
            ("single", "fmix", 0, 0.90, 0.9, 0.10, 0.01, 11.0),
        ]
    )
    table = summarise(frame)
    assert table.loc["baseline", "accuracy_mean"] == pytest.approx(0.61)
    assert table.loc["baseline", "accuracy_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert table.loc["noisy", "epoch_time_vs_baseline"] == pytest.approx(2.0)
    # paired by seed: big-gain moves +0.20 and +0.19, noisy -0.02 and +0.04
    assert table.loc["big-gain", "accuracy_diff"] == pytest.approx(0.195)
    assert table["accuracy_diff_verdict"].to_dict() == {
        "baseline": "baseline",
        "big-gain": "better",
        "noisy": "no detectable difference",
        "single": "not resolved",
    }
    # identical ECE on every run: no noise to estimate, so no verdict either way (never a certain one)
    assert table.loc["big-gain", "ece_diff_verdict"] == "not resolved"
    shown = headline_table(table)
    assert list(shown.columns) == [
        "accuracy %",
        "Δ accuracy vs baseline (pts)",
        "ECE % (15 bins)",
        "Δ ECE vs baseline (pts)",
        "epoch time vs baseline",
    ]
    assert shown.loc["baseline", "accuracy %"] == f"61.0{PM}1.4"  # accuracy in points, one decimal
    assert shown.loc["single", "accuracy %"] == "90.0"
    assert shown.loc["big-gain", "Δ accuracy vs baseline (pts)"].startswith("+19.5 [")
    assert shown.loc["big-gain", "Δ accuracy vs baseline (pts)"].endswith("] better")
    assert shown.loc["noisy", "Δ accuracy vs baseline (pts)"].endswith("] no detectable difference")
    # one paired seed: 0.90 - 0.60 on seed 0, no interval
    assert shown.loc["single", "Δ accuracy vs baseline (pts)"] == "+30.0, not resolved"
    assert shown.loc["big-gain", "Δ ECE vs baseline (pts)"] == "+0.00, not resolved"
    assert shown.loc["noisy", "epoch time vs baseline"] == "2.00x"  # three significant digits
    details = details_table(table)
    assert list(details.columns) == ["method", "seeds", "macro F1 %", "macro FPR %", "s / epoch"]
    assert details.loc["baseline", "s / epoch"] == f"11.0{PM}1.4"
    assert "accuracy" in detectable_statement(table) and "ECE" in detectable_statement(table)


@pytest.mark.parametrize(
    ("column", "stored", "shown"),
    [("accuracy %", 0.61234, "61.2"), ("ECE % (15 bins)", 0.01234, "1.23"), ("s / epoch", 0.123456, "0.123")],
)
def test_every_run_is_shown_under_human_headings_in_the_books_precision(column, stored, shown):
    names = {"accuracy %": "accuracy", "ECE % (15 bins)": "ece", "s / epoch": "epoch_seconds"}
    frame = runs([("baseline", "none", 0, 0.5, 0.5, 0.1, 0.1, 1.0)])
    frame[names[column]] = stored
    table = runs_table(frame)
    assert table.loc[("baseline", 0), column] == shown
    assert "macro_fpr" not in table.columns and "macro FPR %" in table.columns


def test_runs_of_other_seeds_are_left_out(tmp_path, tiny_config):
    metrics = {"accuracy": 0.5, "macro_f1": 0.5, "ece": 0.1, "macro_fpr": 0.1, "epoch_seconds": 1.0}
    for seed in (0, 1, 9):  # seed 9: a folder left from an earlier profile
        write_run_folder(run_folder(tmp_path, "baseline", seed).path, tiny_config.replace(seed=seed), metrics)
    runs = collect_runs(tmp_path, ["baseline"], [0, 1])
    assert runs["seed"].tolist() == [0, 1]
    assert summarise(runs).loc["baseline", "seeds"] == 2
