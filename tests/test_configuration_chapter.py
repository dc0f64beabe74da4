from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from mixlib.chapters.configuration import parameter_table, seed_table
from mixlib.chapters.scores import NO_BREAK
from mixlib.config import RunConfig

PM = f"{NO_BREAK}±{NO_BREAK}"  # how a table shows mean ± std


@pytest.mark.parametrize(
    ("score", "values", "heading", "cells"),
    [
        ("accuracy", [0.61234, 0.6], "accuracy %", ["61.2", "60.0", f"60.6{PM}0.9"]),
        ("ece", [0.01234, 0.02], "ECE % (15 bins)", ["1.23", "2.00", f"1.62{PM}0.54"]),
        ("epoch_seconds", [12.345, 11.0], "s / epoch", ["12.3", "11.0", f"11.7{PM}1.0"]),
        ("macro_precision", [0.5, np.nan], "macro precision %", ["50.0", "–", "50.0"]),
        ("max_box_acc_v2", [40.0, 44.0], "MaxBoxAccV2 %, τ from val", ["40.0", "44.0", f"42.0{PM}2.8"]),
    ],
)
def test_one_row_per_score_under_its_heading_in_the_books_precision(score, values, heading, cells):
    table = seed_table(pd.DataFrame({score: values}, index=pd.Index([0, 3], name="seed")))
    assert list(table.columns) == ["seed 0", "seed 3", "mean ± std"]
    assert table.loc[heading].tolist() == cells


def test_every_parameter_is_named_in_words_beside_its_papermill_name():
    table = parameter_table(RunConfig(lr=0.02), [0, 1])
    assert set(table["papermill name"]) == {f.name for f in fields(RunConfig)}
    assert table.loc["learning rate"].tolist() == ["0.02", "lr"]
    assert table.loc["training seed(s)", "value"] == "0, 1"
    assert table.loc["memory for in-memory data (GiB)", "papermill name"] == "memory_budget_gib"
