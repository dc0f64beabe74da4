"""`python -m mixlib`: bad input ends in one clear line and exit status 2, before anything runs."""

import shutil
from pathlib import Path

import pytest

from mixlib.cli import main
from mixlib.sweep.runner import execute

REPOSITORY = Path(__file__).resolve().parents[1]
SYNTHETIC_PROFILE = """name: syn
seeds: [0]
defaults: {images_per_class: 2, val_per_class: 1, test_per_class: 1, image_size: 32, epochs: 1}
configurations:
  - name: baseline
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A scratch copy of what `report` needs from the repository root, as the working directory."""
    for name in ("_config.yml", "_toc.yml", "notebooks", "book"):
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("generated"))
        else:
            shutil.copy(source, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_a_missing_profile_is_one_line_and_exit_status_2(workspace, capsys):
    assert main(["report", "--profile", "missing.yml"]) == 2
    assert "profile file 'missing.yml' does not exist" in one_line_error(capsys)


def test_debug_shows_the_traceback(workspace):
    with pytest.raises(FileNotFoundError, match="missing.yml"):
        main(["report", "--profile", "missing.yml", "--debug"])


def test_bad_method_params_fail_before_anything_runs(workspace, capsys):
    profile = workspace / "bad.yml"
    profile.write_text(SYNTHETIC_PROFILE + "    method: mixup\n    method_params: {alpha: -1}\n")
    assert main(["report", "--profile", str(profile)]) == 2
    assert "configuration 'baseline': method_params of method 'mixup': alpha must" in one_line_error(capsys)
    assert not (workspace / "runs").exists()


@pytest.mark.parametrize(
    ("profile_text", "message"),
    [
        (
            SYNTHETIC_PROFILE.replace("name: syn", "name: ../../p/escaped"),
            "'name' must be a plain folder name",
        ),
        (SYNTHETIC_PROFILE.replace("name: syn", "name: /tmp/escaped"), "'name' must be a plain folder name"),
        ("name: syn\ndefaults: 5\nconfigurations:\n  - name: baseline\n", "'defaults' must be a mapping"),
        *[
            (SYNTHETIC_PROFILE.replace("seeds: [0]", f"seeds: {seeds}"), "'seeds' must be a non-empty list")
            for seeds in ("[-1]", "[0, 0]", "[true]", f"[{10**22}]")
        ],
    ],
)
def test_a_bad_profile_is_one_line_exit_2_and_creates_nothing(workspace, capsys, profile_text, message):
    profile = workspace / "bad.yml"
    profile.write_text(profile_text)
    before = sorted(workspace.rglob("*"))
    assert main(["report", "--profile", str(profile), "--no-build"]) == 2
    assert message in one_line_error(capsys)
    assert sorted(workspace.rglob("*")) == before  # no runs/, no cache
    assert not (workspace.parent / "p").exists() and not Path("/tmp/escaped").exists()


def test_a_template_seed_given_as_text_is_named(tmp_path):
    notebook = tmp_path / "out.ipynb"
    parameters = {"seeds": "foo", "runs_dir": str(tmp_path / "runs")}
    error = execute(REPOSITORY / "notebooks" / "train.ipynb", notebook, parameters, REPOSITORY, False)
    assert error is not None and error.startswith(
        "ValueError: seeds must be a list of seeds or its JSON text"
    )
    assert not (tmp_path / "runs").exists()


def test_synthetic_profile_never_overwrites_a_users_image_folder(workspace, capsys):
    photos = workspace / "photos"
    for split in ("train", "test"):
        (photos / split / "cats").mkdir(parents=True)
        (photos / split / "cats" / "tom.jpg").write_bytes(b"a user's photo")
    profile = workspace / "syn.yml"
    profile.write_text(SYNTHETIC_PROFILE)
    assert main(["report", "--profile", str(profile), "--data-root", str(photos), "--no-build"]) == 2
    assert "not made by the synthetic generator" in one_line_error(capsys)
    assert sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*.jpg")) == [
        "test/cats/tom.jpg",
        "train/cats/tom.jpg",
    ]
    assert (photos / "train" / "cats" / "tom.jpg").read_bytes() == b"a user's photo"


def test_latency_refuses_a_checkpoint_that_would_run_code(code_running_checkpoint, capsys):
    checkpoint, marker = code_running_checkpoint
    argv = ["latency", "--input-size", "32", "--checkpoint", str(checkpoint), "--no-measure"]
    assert main(argv) == 2
    assert "refused to load" in one_line_error(capsys)
    assert not marker.exists()
