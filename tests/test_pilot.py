"""The pilot: schedule lengths scored on validation accuracy only, gains paired by seed, cost lines."""

from types import SimpleNamespace

import pandas as pd
import pytest

from mixlib.profiles import load_profile
from mixlib.profiles.pilot import (
    accuracy_table,
    chosen_configurations,
    cost_lines,
    estimated_hours,
    figures,
    pilot,
)

# validation accuracy by (label_smoothing, epochs, seed); the test accuracy would rank them the other way
VALIDATION = {
    (0.0, 2, 0): 0.30, (0.0, 2, 1): 0.34, (0.0, 4, 0): 0.40, (0.0, 4, 1): 0.42,
    (0.1, 2, 0): 0.31, (0.1, 2, 1): 0.37, (0.1, 4, 0): 0.45, (0.1, 4, 1): 0.49,
}  # fmt: skip


def fake_train(config, run_dir, progress):
    run_dir.mkdir(parents=True)
    accuracy = VALIDATION[(config.label_smoothing, config.epochs, config.seed)]
    history = pd.DataFrame({"val_accuracy": [0.0] * (config.epochs - 1) + [accuracy]})
    return SimpleNamespace(history=history, metrics={"accuracy": 1 - accuracy}, trained=True)


@pytest.fixture
def runs(tmp_path):
    configurations = chosen_configurations(load_profile("smoke"), ["baseline", "label-smoothing"])
    return pilot(configurations, [2, 4], [0, 1], tmp_path, train=fake_train)


def test_every_point_is_a_run_of_its_own_length_scored_on_validation(runs, tmp_path):
    assert len(runs) == 8
    accuracy = runs.set_index(["configuration", "epochs", "seed"])["val_accuracy"]
    assert accuracy.loc[("label-smoothing", 4, 1)] == 0.49
    assert (tmp_path / "label-smoothing" / "epochs4" / "seed1" / "pilot.json").is_file()


def test_gain_over_the_reference_is_paired_by_seed_at_each_length(runs):
    table = accuracy_table(runs, "baseline").set_index(["configuration", "epochs"])
    assert table.loc[("label-smoothing", 2), "gain_over_baseline"] == pytest.approx(0.02)
    assert table.loc[("label-smoothing", 4), "gain_over_baseline"] == pytest.approx(0.06)
    assert table.loc[("baseline", 4), "gain_over_baseline"] == 0
    assert table.loc[("baseline", 4), "val_accuracy"] == pytest.approx(0.41)


def test_cost_line_recovers_fixed_and_per_epoch_seconds():
    runs = pd.DataFrame(
        {"configuration": ["a"] * 3, "epochs": [5, 10, 20], "seconds": [70.0, 120.0, 220.0], "seed": 0}
    )
    line = cost_lines(runs)["a"]
    assert line == {"fixed": pytest.approx(20.0), "per_epoch": pytest.approx(10.0)}
    assert estimated_hours({"a": line}, configurations=3, seeds=3, epochs=40) == pytest.approx(9 * 420 / 3600)


def test_figures_are_plain_data_for_the_profile(runs):
    section = figures(runs, "baseline", "python -m mixlib pilot --profile smoke")
    assert section["command"] == "python -m mixlib pilot --profile smoke"
    assert section["seeds"] == [0, 1]
    assert {row["configuration"] for row in section["validation_accuracy"]} == {"baseline", "label-smoothing"}
    assert isinstance(section["validation_accuracy"][0]["val_accuracy"], float)


def test_unknown_configuration_is_named_with_the_allowed_ones():
    with pytest.raises(ValueError, match=r"--configurations \['mixup'\].*allowed values: \['baseline'"):
        chosen_configurations(load_profile("smoke"), ["baseline", "mixup"])
