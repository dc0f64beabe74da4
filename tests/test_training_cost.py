"""Training cost measured alone and side by side: the record, its rounds, the batches every configuration
is timed on, the pairing by round, and the chapter template on the smoke profile's configurations."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import mixlib.training  # noqa: E402
from mixlib.bench import training_cost  # noqa: E402
from mixlib.chapters import training_cost as training_cost_chapter  # noqa: E402
from mixlib.cli import main  # noqa: E402
from mixlib.profiles import load_profile  # noqa: E402

from helpers import parameters_cell, write_run_folder  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TEMPLATE = REPOSITORY / "notebooks" / "training_cost.ipynb"
ROUNDS, STEPS, WARMUP = 3, 2, 1


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread for the module


@pytest.fixture(scope="module")
def configurations(tiny_config) -> dict:
    return {
        "baseline": tiny_config,
        "mixup": tiny_config.replace(method="mixup"),
        "proxy": tiny_config.replace(method="proxy", method_params={"schedule": [1, "p", "p"]}, epochs=3),
    }


def input_hash(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().contiguous().numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def measured(configurations) -> dict:
    """The record, and the hash of every batch `step_tensors` was given (after the augmentation, before
    the method's transform), in the order the steps ran."""
    seen: list[str] = []
    step_tensors = mixlib.training.step_tensors

    def watched(model, optimizer, inputs, targets, *args, **kwargs):
        seen.append(input_hash(inputs) + input_hash(targets))
        return step_tensors(model, optimizer, inputs, targets, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mixlib.training, "step_tensors", watched)
        record = training_cost.measure_training_cost(configurations, ROUNDS, STEPS, WARMUP)
    return {"record": record, "inputs": seen}


def test_the_record_holds_every_round_of_every_configuration(measured, configurations):
    record = measured["record"]
    assert set(record["machine"]) == {"device", "device_name", "cpu_model", "threads", "torch"}
    assert record["machine"]["threads"] == 1 and record["machine"]["torch"] == torch.__version__
    setting = record["setting"]
    assert (setting["rounds"], setting["steps_per_round"], setting["warmup_steps"]) == (ROUNDS, STEPS, WARMUP)
    assert list(record["configurations"]) == list(configurations)
    assert len(record["measurements"]) == ROUNDS * len(configurations)
    for row in record["measurements"]:
        assert row["seconds_per_step"] > 0 and row["images_per_step"] == 16
    proxy, baseline = record["configurations"]["proxy"], record["configurations"]["baseline"]
    assert proxy["proxy_epochs"] == [2, 3] and proxy["callbacks"] == ["ProxyAttention"]
    assert baseline["proxy_epochs"] == [] and baseline["batches_per_epoch"] == 3  # 60 images, batch 16


def test_rounds_are_interleaved_in_shuffled_orders(measured, configurations):
    rows = measured["record"]["measurements"]
    by_start = sorted(rows, key=lambda row: row["start_seconds"])
    assert [row["round"] for row in by_start] == sorted(row["round"] for row in rows)  # round after round
    orders = []
    for round_index in range(ROUNDS):
        in_round = sorted((r for r in rows if r["round"] == round_index), key=lambda r: r["position"])
        assert sorted(r["configuration"] for r in in_round) == sorted(configurations)  # each once
        orders.append(tuple(r["configuration"] for r in in_round))
    assert len(set(orders)) > 1  # the order changes between rounds


def test_every_configuration_steps_on_the_same_batches(measured, configurations):
    record, seen = measured["record"], measured["inputs"]
    checksums = {entry["batch_checksum"] for entry in record["configurations"].values()}
    assert len(checksums) == 1  # the same stored images and labels
    timed = seen[WARMUP * len(configurations) :]
    assert len(timed) == ROUNDS * len(configurations) * STEPS
    # the rows in the order they ran; each ran STEPS steps, augmented from generators of its round
    ran = sorted(measured["record"]["measurements"], key=lambda row: row["start_seconds"])
    rounds: dict[int, set] = {}
    for index, row in enumerate(ran):
        rounds.setdefault(row["round"], set()).add(tuple(timed[index * STEPS : (index + 1) * STEPS]))
    assert all(len(inputs) == 1 for inputs in rounds.values())  # identical inputs within a round
    assert len({next(iter(inputs)) for inputs in rounds.values()}) == ROUNDS  # new draws each round


def test_other_data_gives_another_checksum(tmp_path, configurations):
    config = configurations["baseline"]
    checksums = [
        training_cost.batch_checksum(training_cost.build_contender(name, c, tmp_path / name, 1, 0).batches)
        for name, c in (("same", config), ("again", config), ("other", config.replace(split_seed=1)))
    ]
    assert checksums[0] == checksums[1] != checksums[2]


@pytest.mark.parametrize(
    ("rounds", "steps", "warmup", "message"),
    [(0, 1, 1, "rounds must be an integer >= 1"), (1, 0, 1, "steps_per_round"), (1, 1, -1, "warmup_steps")],
)
def test_bad_settings_are_refused_naming_the_parameter(configurations, rounds, steps, warmup, message):
    with pytest.raises(ValueError, match=message):
        training_cost.measure_training_cost(configurations, rounds, steps, warmup)


def test_the_record_is_written_and_read_back(tmp_path, measured):
    path = training_cost.write_record(measured["record"], tmp_path / "runs")
    assert path == tmp_path / "runs" / "training_cost.json"
    assert training_cost.read_record(tmp_path / "runs") == measured["record"]
    with pytest.raises(FileNotFoundError, match="training_cost chapter writes it"):
        training_cost.read_record(tmp_path / "elsewhere")


# -- pairing by round ---------------------------------------------------------------------------------


def handmade_record() -> dict:
    """Per-round ratios 2, 1, 4 for `slow` (geometric mean 2; its median time over the baseline's is 1)."""
    times = {"baseline": [1.0, 2.0, 4.0], "slow": [2.0, 2.0, 16.0]}
    rows = [
        {"round": r, "configuration": name, "seconds_per_step": seconds[r], "images_per_step": 8}
        for name, seconds in times.items()
        for r in range(3)
    ]
    random.Random(0).shuffle(rows)  # pairing must go by round, not by position
    return {"configurations": {"baseline": {}, "slow": {}}, "measurements": rows}


def test_ratios_are_paired_by_round():
    times = training_cost.step_times(handmade_record())
    assert list(times.columns) == ["configuration", "round", "seconds_per_step", "images_per_step"]
    assert list(times["configuration"]) == ["baseline"] * 3 + ["slow"] * 3
    ratios = training_cost.paired_ratios(times, "baseline")
    assert list(ratios.columns) == ["configuration", "round", "ratio"]
    slow = ratios[ratios["configuration"] == "slow"].set_index("round")["ratio"]
    assert slow.to_dict() == {0: 2.0, 1: 1.0, 2: 4.0}
    assert training_cost.geometric_mean_ratios(times, "baseline")["slow"] == pytest.approx(2.0)
    wide = times.pivot(index="round", columns="configuration", values="seconds_per_step")
    assert list(wide.columns) == ["baseline", "slow"]  # pivots by round as the runs pivot by seed
    with pytest.raises(ValueError, match="baseline 'none' was not measured"):
        training_cost.paired_ratios(times, "none")


def test_the_summary_has_three_significant_digits():
    times = training_cost.step_times(handmade_record()).assign(
        seconds_per_step=lambda t: t.seconds_per_step / 81
    )
    shown = training_cost.shown_summary(times, "baseline")
    assert shown.loc["slow", "ms per step (median)"] == "24.7"  # 2 s / 81
    assert shown.loc["slow", "x baseline (geometric mean of per-round ratios)"] == "2"
    assert shown.loc["slow", "per-round range"] == "1-4"
    assert "x baseline (geometric mean of per-round ratios)" not in training_cost.shown_summary(times, None)
    assert training_cost.significant(1.0123) == "1.01" and training_cost.significant(1012.3) == "1010"
    header = training_cost_chapter.step_table(times, "baseline").to_html().split("</thead>")[0]
    assert header.count("<tr") == 1 and "<th>configuration</th>" in header  # one header row


# -- the chapter ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> tuple[Path, list[str], list[int]]:
    """Run folders of the smoke profile's configurations (what the chapter reads: config, metrics,
    history), and a Proxy Attention configuration whose runs trained 2 and 4 extra batches."""
    profile = load_profile("smoke")
    runs_dir = tmp_path_factory.mktemp("training-cost") / "runs" / "smoke"
    configs = {c.name: c.config for c in profile.configurations}
    configs["proxy"] = configs["baseline"].replace(
        method="proxy", method_params={"schedule": [1, "p"]}, epochs=2
    )
    for name, config in configs.items():
        for seed, extra in zip(profile.seeds, (2, 4), strict=True):
            history = {"epoch": [1, 2], "proxy_extra_steps": [0, extra]} if name == "proxy" else None
            write_run_folder(runs_dir / name / f"seed{seed}", config.replace(seed=seed), {}, history)
    return runs_dir, list(configs), list(profile.seeds)


def test_the_template_defaults_are_the_measurements():
    defaults = parameters_cell(TEMPLATE)
    assert (defaults["rounds"], defaults["steps_per_round"], defaults["warmup_steps"]) == (
        training_cost.DEFAULT_ROUNDS,
        training_cost.DEFAULT_STEPS_PER_ROUND,
        training_cost.DEFAULT_WARMUP_STEPS,
    )


def test_the_template_measures_the_runs_configurations_and_writes_the_record(tmp_path, smoke_runs):
    runs_dir, names, seeds = smoke_runs
    output = tmp_path / "training_cost.ipynb"
    papermill.execute_notebook(
        str(TEMPLATE),
        str(output),
        parameters={
            "runs_dir": str(runs_dir),
            "configurations": names,
            "seeds": seeds,
            "rounds": 2,
            "steps_per_round": 1,
            "warmup_steps": 0,
        },
        cwd=str(REPOSITORY),
        progress_bar=False,
    )
    record = training_cost.read_record(runs_dir)
    assert list(record["configurations"]) == names and len(record["measurements"]) == 2 * len(names)
    assert record["configurations"]["baseline"]["image_size"] == 32  # the runs' config.json, not a default
    text = "".join(
        str(output.get("data", {}).get("text/plain", ""))
        + str(output.get("data", {}).get("text/markdown", ""))
        for cell in nbformat.read(output, as_version=4).cells
        for output in cell.get("outputs", [])
    )
    assert "label-smoothing" in text and "x baseline" in text and "extra batches per run" in text


def test_extra_batches_come_from_the_runs_histories(smoke_runs):
    runs_dir, names, seeds = smoke_runs
    record = training_cost_chapter.measure_and_record(runs_dir, names, seeds, 1, 1, 0)
    table = training_cost_chapter.extra_batches(record, runs_dir, seeds)
    assert list(table.index) == ["proxy"]
    row = table.loc["proxy"]
    assert row["extra batches per run"] == 3.0 and row["seeds"] == 2  # (2 + 4) / 2
    batches = record["configurations"]["proxy"]["batches_per_epoch"] * 2
    assert row["batches without proxies"] == batches
    ratio = training_cost.geometric_mean_ratios(training_cost.step_times(record), "baseline")["proxy"]
    base = record["configurations"]["baseline"]
    expected = ratio * (batches + 3) / (base["batches_per_epoch"] * base["epochs"])
    assert float(row["step work per run x baseline's"]) == pytest.approx(expected, rel=1e-2)


def test_the_command_prints_the_table(capsys):
    argv = [
        "bench",
        "training-cost",
        "--profile",
        "smoke",
        "--rounds",
        "1",
        "--steps",
        "1",
        "--warmup-steps",
        "0",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ms per step (median)" in out and "label-smoothing" in out and "1 rounds x 1 steps" in out


def test_the_command_refuses_an_unknown_configuration(capsys):
    assert main(["bench", "training-cost", "--profile", "smoke", "--configurations", "nope"]) == 2
    assert "--configurations ['nope'] are not in profile 'smoke'" in capsys.readouterr().err
