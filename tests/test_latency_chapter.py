"""The Orin latency chapter: grouping by architecture, ONNX bundles per configuration, measured CSVs."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest
import torch
from torch import nn

from mixlib.chapters.latency import (
    Architecture,
    TrainedModel,
    architecture_of,
    build_latency_chapter,
    device_steps_markdown,
    group_by_architecture,
    here_note,
    here_table,
    measured_note,
    orin_measured_table,
    orin_table,
    plot_latency,
    trtexec_markdown,
)
from mixlib.latency import orin_measure
from mixlib.latency.measured import schema_markdown
from mixlib.runs import run_folder

matplotlib.use("Agg")

REPOSITORY = Path(__file__).resolve().parents[1]
AGX_ORIN = "Jetson AGX Orin Developer Kit"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory, finished_run: Path) -> Path:
    """Configurations `a` and `b`: copies of one tiny finished run under two names."""
    runs = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        shutil.copytree(finished_run, run_folder(runs, name, 0).path)
    return runs


def _measured_row(model: str, device: str, precision: str, median_ms: float) -> dict:
    row = dict.fromkeys(orin_measure.CSV_COLUMNS, "")
    row.update(
        model=model, onnx_file=f"{model}.onnx", input_shape="1x3x32x32", batch=1, precision=precision,
        median_ms=median_ms, p90_ms=median_ms * 1.05, p99_ms=median_ms * 1.2, device_model=device,
        power_mode="MAXN", power_mode_id="0", tensorrt="8.5.2", l4t_release="R35.3.1",
        timestamp="2026-11-21T10:00:00+00:00", trtexec_command=f"trtexec --onnx={model}.onnx",
    )  # fmt: skip
    return row


@pytest.fixture(scope="module")
def chapter(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The chapter over `a` and `b`, with a measured CSV for `b` from an AGX Orin and an Orin Nano."""
    measured_dir = tmp_path_factory.mktemp("results") / "orin"
    measured_dir.mkdir()
    rows = [
        _measured_row("b_32px", AGX_ORIN, "fp16", 0.2),
        _measured_row("b_32px", "Jetson Orin Nano", "int8", 0.5),
    ]
    pd.DataFrame(rows).to_csv(measured_dir / "measured_maxn.csv", index=False)
    (runs_dir / "onnx").mkdir(exist_ok=True)
    (runs_dir / "onnx" / "dropped_32px.onnx").write_bytes(b"")  # a configuration no longer in the profile
    return build_latency_chapter(
        runs_dir, ["a", "b"], [0], measured_dir=measured_dir, measure_here=False, reference_models=[]
    )


@pytest.mark.parametrize(
    ("image_size", "small_input", "stride"), [(32, True, 8), (64, True, 8), (128, True, 16), (64, False, 32)]
)
def test_architecture_follows_the_output_stride(tiny_config, image_size, small_input, stride):
    config = tiny_config.replace(image_size=image_size, small_input=small_input)
    assert architecture_of(config, 10) == Architecture("resnet10t", image_size, 10, stride)


def test_configurations_are_grouped_by_architecture():
    small, large = Architecture("resnet10t", 48, 10, 8), Architecture("resnet10t", 64, 10, 8)
    models = [
        TrainedModel(name, Path(name), architecture, nn.Identity())
        for name, architecture in (("base", small), ("bigger", large), ("mixup", small))
    ]
    groups = group_by_architecture(models)
    assert list(groups) == [small, large]
    assert [m.configuration for m in groups[small]] == ["base", "mixup"]
    assert Architecture("resnet10t", 48, 200, 8) != small  # another head is another architecture


def test_every_configuration_gets_a_checked_onnx_bundle(chapter, runs_dir):
    onnx_dir = runs_dir / "onnx"
    assert [r["configurations"] for r in chapter.reports] == [["a", "b"]]  # one architecture
    assert {e["configuration"] for e in chapter.exports} == {"a", "b"}
    assert all(e["check"]["ok"] for e in chapter.exports)
    assert sorted(p.name for p in onnx_dir.glob("*.onnx")) == ["a_32px.onnx", "b_32px.onnx"]  # stale one gone
    assert (onnx_dir / "orin_measure.py").is_file()
    commands = trtexec_markdown(chapter)
    assert "--onnx=a_32px.onnx --fp16" in commands and "--onnx=b_32px.onnx --int8" in commands
    assert f"scp -r {onnx_dir} orin:mixlib-onnx" in device_steps_markdown(chapter)


def test_device_script_reads_the_exported_folder(chapter, tmp_path, capsys):
    out = tmp_path / "measured.csv"
    argv = [str(chapter.onnx_dir), "--out", str(out), "--trtexec", "trtexec", "--dry-run"]
    assert orin_measure.main(argv) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trtexec ")]
    assert len(commands) == 2 * 2 * 2  # two files, FP16 and INT8, batches 1 and 8
    assert all("x3x32x32" in command for command in commands)


def test_measured_csv_replaces_the_projection_in_the_chapter(chapter):
    table = orin_table(chapter)
    label = chapter.reports[0]["label"]
    assert table.loc[(label, "fp16"), "MAXN"] == "measured 0.2"  # measured for b, stands for a and b
    assert table.loc[(label, "fp16"), "15W"].startswith("projected")
    assert table.loc[(label, "int8"), "MAXN"].startswith("projected")  # a Nano does not replace it
    assert list(table.columns) == ["MAXN", "50W", "30W", "15W"]
    measured = orin_measured_table(chapter)
    assert sorted(measured["device"]) == sorted([AGX_ORIN, "Jetson Orin Nano"])
    assert "measured_maxn.csv" in measured_note(chapter) and "1 replace" in measured_note(chapter)
    lines = {line.get_label(): line for line in plot_latency(chapter).axes[0].lines}
    measured_x, measured_y = lines["measured FP16"].get_data()
    assert list(measured_y) == [0.2]  # the AGX Orin row, at the architecture's FLOPs
    assert measured_x[0] == pytest.approx(chapter.reports[0]["cost"]["gflops"], rel=0.05)
    assert len(lines["measured INT8"].get_xdata()) == 0  # the Orin Nano's row is not an AGX Orin's


def test_latency_here_is_measured_with_the_chosen_threads(runs_dir, tmp_path):
    threads = torch.get_num_threads()
    chapter = build_latency_chapter(
        runs_dir,
        '["a"]',
        "[0]",
        measured_dir=tmp_path / "none",
        reference_models=[],
        threads=1,
        budget_s=0.01,
    )
    assert torch.get_num_threads() == threads  # restored
    table = here_table(chapter)
    assert {"torch-cpu b1", "torch-cpu b8", "onnxruntime-cpu b1", "onnxruntime-cpu b8"} <= set(table.columns)
    results = chapter.reports[0]["measured_here"]["results"]
    assert all(r["threads"] == 1 and r["repeats"] >= 5 and r["median_ms"] > 0 for r in results)
    assert "1 CPU thread(s)" in here_note(chapter)
    assert "No measured CSV" in measured_note(chapter)
    assert set(orin_table(chapter).stack().str.split().str[0]) == {"projected"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"configurations": []}, "configurations must be a non-empty list"),
        ({"reference_models": ["resnet_unknown"]}, "unknown model 'resnet_unknown'"),
        ({"threads": 0}, "threads must be None or >= 1"),
    ],
)
def test_bad_parameters_fail_before_any_work(arguments, message, tmp_path):
    parameters = {"runs_dir": tmp_path, "configurations": ["a"], "seeds": [0], **arguments}
    with pytest.raises(ValueError, match=message):
        build_latency_chapter(**parameters)
    assert not (tmp_path / "onnx").exists()


def test_results_folder_documents_the_csv_schema():
    readme = (REPOSITORY / "results" / "orin" / "README.md").read_text()
    assert schema_markdown() in readme
    assert "python3 orin_measure.py . --out results/orin/measured_maxn.csv" in readme


def test_template_defaults_read_the_results_folder():
    notebook = nbformat.read(REPOSITORY / "notebooks" / "latency.ipynb", as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    defaults = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body}
    assert defaults["measured_dir"] == "results/orin"
    summary = {"profile_name", "profile_title", "profile_description", "runs_dir", "configurations", "seeds"}
    assert summary <= set(defaults)
