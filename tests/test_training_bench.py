import pytest
import torch

from mixlib.bench import training as training_bench
from mixlib.cli import build_parser

from helpers import parsed_bench_args

SMALL = [
    *("--images-per-class", "3", "--image-size", "32", "--batch-size", "8", "--repeats", "1"),
    *("--device", "cpu", "--threads", "1", "--min-feature-size", "2"),
]


def test_benchmark_reports_both_pipelines_and_checks_the_targets():
    result = training_bench.benchmark(parsed_bench_args(training_bench, SMALL))
    for name in ("reference", "new"):
        row = result["pipelines"][name]
        for key in ("data_ms", "mixing_ms", "step_ms", "epoch_images_per_second", "step_gflops"):
            assert row[key] > 0, (name, key)
        assert row["step_share_of_matmul"] == pytest.approx(
            row["step_gflops"] / result["machine"]["matmul_gflops"]
        )
    assert result["kornia_data_ms"] > 0 and result["setting"]["step_gflop"] > 0
    assert [check["bound"] for check in result["targets"]] == [10.0, 0.1, 1.3]
    for check in result["targets"]:
        assert check["met"] == (
            check["value"] <= check["bound"] if check["unit"] == "share" else check["value"] >= check["bound"]
        )
    table = training_bench.format_table(result)
    assert "per-image pipeline of c527d0d, rebuilt inside this benchmark" in table
    assert "whole epoch, images/s" in table and "Kornia" in table
    assert sum(line.startswith(("[met]", "[MISSED]")) for line in table.splitlines()) == 3


def test_bench_training_is_a_command():
    args = build_parser("bench").parse_args(["bench", "training", "--json"])
    assert args.bench_module is training_bench and args.json


def test_free_data_ceiling_is_amdahls_law_on_the_reference_batch():
    # data 20 ms + mixing 5 ms + step 75 ms: removing the data stage leaves 80 of 100 ms
    reference = {"data_ms": 20.0, "mixing_ms": 5.0, "step_ms": 75.0}
    assert training_bench.free_data_ceiling(reference) == pytest.approx(1.25)
    new = {"data_ms": 1.0, "mixing_ms": 5.0, "step_ms": 75.0}
    result = {
        "pipelines": {
            "reference": {**reference, "epoch_images_per_second": 100.0},
            "new": {**new, "epoch_images_per_second": 120.0},
        },
        "compiled": None,
    }
    checks = training_bench.targets(result, torch.device("cpu"))
    (epoch,) = [check for check in checks if "whole-epoch" in check["target"]]
    assert epoch["ceiling"] == pytest.approx(1.25) and not epoch["met"]


def test_compiled_epochs_pay_back_the_compile_time_and_are_checked_against_the_target():
    # 1000 images an epoch: 10 s eager, 5 s compiled, 50 s to compile -> paid back after 10 epochs
    compiled = {"compile_seconds": 50.0, "step_ms": 40.0}
    compiled.update(training_bench.amortised(compiled, {"new": 100.0, "compiled": 200.0}, 1000))
    assert compiled["break_even_epochs"] == pytest.approx(10.0)
    slower = training_bench.amortised(compiled, {"new": 100.0, "compiled": 90.0}, 1000)
    assert slower["break_even_epochs"] == float("inf")
    step = {"data_ms": 1.0, "mixing_ms": 1.0, "step_ms": 80.0}
    result = {
        "pipelines": {
            "reference": {**step, "epoch_images_per_second": 150.0},
            "new": {**step, "epoch_images_per_second": 100.0},
        },
        "compiled": compiled,
    }
    (check,) = [
        c for c in training_bench.targets(result, torch.device("cpu")) if "torch.compile" in c["target"]
    ]
    assert check["value"] == pytest.approx(200 / 150) and check["met"]
    assert "paid back after 10.0 epochs" in check["target"]
