import numpy as np
import pandas as pd
import pytest

from mixlib.report.configuration_chapter import seed_table


@pytest.mark.parametrize(
    ("score", "values", "heading", "cells"),
    [
        ("accuracy", [0.61234, 0.6], "accuracy %", ["61.2", "60.0", "60.6 ± 0.9"]),
        ("ece", [0.01234, 0.02], "ECE % (15 bins)", ["1.23", "2.00", "1.62 ± 0.54"]),
        ("epoch_seconds", [12.345, 11.0], "s / epoch", ["12.3", "11.0", "11.7 ± 1.0"]),
        ("macro_precision", [0.5, np.nan], "macro precision %", ["50.0", "–", "50.0"]),
        ("max_box_acc_v2", [40.0, 44.0], "MaxBoxAccV2 %, τ from val", ["40.0", "44.0", "42.0 ± 2.8"]),
    ],
)
def test_one_row_per_score_under_its_heading_in_the_books_precision(score, values, heading, cells):
    table = seed_table(pd.DataFrame({score: values}, index=pd.Index([0, 3], name="seed")))
    assert list(table.columns) == ["seed 0", "seed 3", "mean ± std"]
    assert table.loc[heading].tolist() == cells
