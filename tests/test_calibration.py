"""The findings page's error rates, checked by simulation (`null_simulation`): with every configuration
equal to the baseline, at most 5 % of reports (plus Monte Carlo error) call anything better or worse;
and a true difference of twice the stated detectable difference is found in at least 80 % of them."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import optimize

from mixlib.chapters.statistics import NO_DIFFERENCE

from null_simulation import Shape, expected_accuracy, simulated_report

PROFILES = Path(__file__).resolve().parents[1] / "mixlib" / "profiles"
CLASSES = 10  # every shipped profile's data has 10 classes
# test images per class where a profile takes the dataset's whole test folder (test_per_class unset)
# the test folder per class where a profile takes all of it (test_per_class unset): tiny-imagenet's
# official validation images, and the shared ImageFolder subsets (imagenette: 1500 images, cifar10: 2000)
TEST_FOLDER_PER_CLASS = {"tiny-imagenet": 50, "imagefolder": 150}
REPORTS = 300
FAMILY_ERROR = 0.05


def profile_shape(path: Path) -> Shape:
    profile = yaml.safe_load(path.read_text())
    defaults = profile["defaults"]
    per_class = defaults.get("test_per_class") or TEST_FOLDER_PER_CLASS[defaults["dataset"]]
    return Shape(len(profile["seeds"]), per_class * CLASSES, len(profile["configurations"]) - 1)


def family_error_rate(shape: Shape, reports: int, seed: int) -> float:
    generator = np.random.default_rng(seed)
    flagged = [
        (
            simulated_report(shape, np.zeros(shape.configurations + 1), generator)["verdict"] != NO_DIFFERENCE
        ).any()
        for _ in range(reports)
    ]
    return float(np.mean(flagged))


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yml")), ids=lambda p: p.stem)
def test_no_false_verdicts_beyond_five_percent_for_every_shipped_profile(path):
    shape = profile_shape(path)
    rate = family_error_rate(shape, REPORTS, seed=len(path.stem))
    monte_carlo = 2 * np.sqrt(FAMILY_ERROR * (1 - FAMILY_ERROR) / REPORTS)
    assert rate <= FAMILY_ERROR + monte_carlo, (
        f"{path.stem} {shape}: {rate:.3f} of null reports flag something"
    )


def test_twice_the_detectable_difference_is_found_with_the_stated_power():
    shape = Shape(seeds=2, images=500, configurations=16)  # the quick profile
    generator = np.random.default_rng(7)
    null = [simulated_report(shape, np.zeros(17), generator) for _ in range(20)]
    detectable = float(np.median([table["detectable"].median() for table in null]))
    base = expected_accuracy(0.0)
    shift = optimize.brentq(lambda s: expected_accuracy(s) - base - 2 * detectable, 0.0, 5.0)
    shifts = np.zeros(17)
    shifts[1] = shift
    found = [simulated_report(shape, shifts, generator).loc["c0", "verdict"] == "better" for _ in range(100)]
    assert np.mean(found) >= 0.8
