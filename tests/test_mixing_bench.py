import pytest

from mixlib.bench import mixing as bench

from helpers import parsed_bench_args

SMALL = [
    *("--batch-size", "4", "--image-size", "16", "--repeats", "2", "--model-repeats", "1"),
    *("--step-batch-size", "2", "--step-repeats", "1", "--device", "cpu"),
]


def test_benchmark_times_each_method_per_sample_and_per_batch_against_the_libraries():
    result = bench.benchmark(
        parsed_bench_args(bench, SMALL, methods="mixup,cutmix,random_erasing,puzzlemix", malloc="default")
    )
    rows = {row["method"]: row for row in result["results"]["cpu"]["transforms"]}
    assert {"mixup (per batch)", "cutmix (per batch)"} <= set(rows)
    # Methods without a per_sample option, and the slow model-based ones, are timed once.
    assert "random_erasing (per batch)" not in rows and "puzzlemix (per batch)" not in rows
    assert len(rows["puzzlemix"]["samples_ms"]) == 1 and len(rows["cutmix"]["samples_ms"]) == 2
    # Each mixup/cutmix row is compared with timm in the same mode, and with torchvision.
    assert {"timm Mixup (cutmix, elem)", "timm Mixup (cutmix, batch)"} <= set(rows)
    for name in ("mixup", "cutmix", "mixup (per batch)", "cutmix (per batch)"):
        assert rows[name]["vs_timm"] > 0 and rows[name]["vs_torchvision"] > 0
    assert "vs_timm" not in rows["random_erasing"]
    assert rows[bench.FLOOR]["vs_lerp"] == 1.0
    steps = [row["method"] for row in result["results"]["cpu"]["training_steps"]]
    assert steps == ["none", "mixup", "cutmix", "random_erasing", "puzzlemix"]
    table = bench.format_table(result)
    assert "cutmix (per batch)" in table and "x timm" in table
    assert result["machine"]["malloc"] == "default" and "default malloc" in table


def test_the_steady_allocator_is_reported_where_glibc_takes_it():
    result = bench.benchmark(parsed_bench_args(bench, SMALL, methods="mixup", malloc="steady"))
    assert result["machine"]["malloc"] == ("steady" if bench.steady_allocator() else "default")


def test_benchmark_rejects_bad_options_by_name():
    with pytest.raises(ValueError, match="--repeats must be at least 1"):
        bench.benchmark(parsed_bench_args(bench, SMALL, repeats=0))
    with pytest.raises(ValueError, match="unknown --methods entry 'mixpu'; allowed values: .*cutmix"):
        bench.benchmark(parsed_bench_args(bench, SMALL, methods="mixpu"))


def test_speed_targets_name_the_rows_that_miss_them():
    rows = [
        {"method": bench.FLOOR, "role": "floor", "vs_lerp": 1.0},
        {"method": "mixup", "role": "static", "vs_lerp": 1.1, "vs_timm": 0.5, "vs_torchvision": 0.4},
        {
            "method": "cutmix (per batch)",
            "role": "static",
            "vs_lerp": 1.3,
            "vs_timm": 1.2,
            "vs_torchvision": 0.8,
        },
        {"method": "fmix", "role": "static", "vs_lerp": 3.5},
        {"method": "puzzlemix", "role": "model-based", "vs_lerp": 900.0},
    ]
    twins, static = bench.speed_targets(rows)
    assert twins.endswith("slower: cutmix (per batch) 1.20x timm")
    assert static.endswith("2 of 3; over: fmix 3.5x")
    rows[2]["vs_timm"], rows[3]["vs_lerp"] = 1.0, 3.0
    assert bench.speed_targets(rows) == [
        "MixUp and CutMix no slower than timm and torchvision: 2 rows, all met",
        "static methods within 3x the lerp floor: 3 of 3",
    ]
