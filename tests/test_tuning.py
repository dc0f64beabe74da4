"""Fair tuning: grid points are scored on validation accuracy only and written into the profile."""

from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from mixlib.profiles import load_profile, profile_path
from mixlib.profiles.tuning import choose, parse_grid, tune, tuned_profile

# validation accuracy by (lr, seed); the test accuracy favours the other learning rate
VALIDATION = {(0.01, 0): 0.40, (0.01, 1): 0.44, (0.1, 0): 0.50, (0.1, 1): 0.52}
TEST = {0.01: 0.90, 0.1: 0.10}


def fake_train(config, run_dir, progress):
    history = pd.DataFrame({"val_accuracy": [0.0, VALIDATION[(config.lr, config.seed)]]})
    return SimpleNamespace(history=history, metrics={"accuracy": TEST[config.lr]}, config=config)


def test_grid_is_scored_on_validation_only_and_written_into_the_profile(tmp_path):
    profile = load_profile("smoke")
    grid = parse_grid(["lr=0.01,0.1", "weight_decay=0.0005"])
    runs = tune(profile.configurations[0], grid, [0, 1], tmp_path, epochs=3, train=fake_train)
    assert len(runs) == 4 and set(runs.columns) == {"lr", "weight_decay", "seed", "val_accuracy"}
    chosen, scores = choose(runs, grid)
    assert chosen == {"lr": 0.1, "weight_decay": 0.0005}
    assert scores["mean"].tolist() == pytest.approx([0.42, 0.51])
    document = tuned_profile(profile_path("smoke"), chosen, scores, epochs=3, command="python -m mixlib tune")
    assert document["defaults"]["lr"] == 0.1 and document["defaults"]["weight_decay"] == 0.0005
    assert document["tuning"]["grid"][0]["val_accuracy_mean"] == pytest.approx(0.42)
    written = tmp_path / "tuned.yml"
    written.write_text(yaml.safe_dump(document, sort_keys=False))
    tuned = load_profile(str(written))  # the tuned profile still loads, and keeps how it was tuned
    assert tuned.configurations[0].config.lr == 0.1
    assert tuned.sizing["tuning"]["chosen"] == chosen


@pytest.mark.parametrize("entry", ["momentum=0.9", "lr=", "lr=fast"])
def test_bad_grid_entries_are_named(entry):
    with pytest.raises(ValueError, match="--grid"):
        parse_grid([entry])
