"""Tests for the embedded synthetic localisation data set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mixlib.data.synthetic import (
    ANNOTATION_COLUMNS,
    MASK_BODY,
    MASK_PART,
    SyntheticSpec,
    generate_synthetic,
    mask_box,
    render_sample,
    sample_rng,
    synthetic_classes,
)

SMALL = SyntheticSpec(num_classes=3, train_per_class=4, test_per_class=2, image_size=48, seed=7)


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def read_annotations(root: Path) -> list[dict[str, str]]:
    with open(root / "annotations.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("synthetic") / "data", SMALL)


def test_same_seed_gives_identical_bytes_and_other_seed_differs(small_root: Path, tmp_path: Path) -> None:
    again = generate_synthetic(tmp_path / "again", SMALL)
    assert file_bytes(again) == file_bytes(small_root)
    other = generate_synthetic(tmp_path / "other", SyntheticSpec(**{**SMALL.__dict__, "seed": 8}))
    first_image = "train/" + SMALL.class_names[0] + "/00000.png"
    assert (other / first_image).read_bytes() != (small_root / first_image).read_bytes()


def test_layout_matches_annotations(small_root: Path) -> None:
    rows = read_annotations(small_root)
    assert tuple(rows[0]) == ANNOTATION_COLUMNS
    expected = {(split, name) for split in ("train", "test") for name in SMALL.class_names}
    assert {(row["split"], row["class"]) for row in rows} == expected
    assert len(rows) == SMALL.num_classes * (SMALL.train_per_class + SMALL.test_per_class)
    listed = {row["file"] for row in rows} | {row["mask"] for row in rows}
    on_disk = {str(path.relative_to(small_root)) for path in small_root.rglob("*.png")}
    assert listed == on_disk
    for row in rows:
        assert row["file"].startswith(f"{row['split']}/{row['class']}/")
        assert row["mask"] == f"masks/{row['file']}"
        image = read_png(small_root / row["file"])
        assert image.shape == (SMALL.image_size, SMALL.image_size, 3) and image.dtype == np.uint8


def test_box_is_tight_box_of_mask(small_root: Path) -> None:
    for row in read_annotations(small_root):
        mask = read_png(small_root / row["mask"])
        assert mask.shape == (SMALL.image_size, SMALL.image_size) and set(np.unique(mask)) == {0, 1, 2}
        rows, cols = np.nonzero(mask)
        box = tuple(int(row[key]) for key in ("x0", "y0", "x1", "y1"))
        assert box == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_mask_box_rejects_empty_mask() -> None:
    with pytest.raises(ValueError, match="no object"):
        mask_box(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize("class_index", range(10))
def test_part_is_small_square_inside_the_body(class_index: int) -> None:
    spec = SyntheticSpec()
    for index in range(20):
        _, mask = render_sample(spec, class_index, sample_rng(0, "train", class_index, index))
        part = mask == MASK_PART
        fraction = part.sum() / (mask > 0).sum()
        assert 0.05 <= fraction <= 0.2
        x0, y0, x1, y1 = mask_box(part)
        assert part[y0:y1, x0:x1].all() and x1 - x0 == y1 - y0
        # inside the object: every pixel around the part square is body, none is background
        ring = np.zeros_like(part)
        ring[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = True
        assert (mask[ring & ~part] == MASK_BODY).all()


def test_part_colour_identifies_the_class_and_the_body_shape_is_shared() -> None:
    classes = synthetic_classes(20)
    assert len({(cls.colour, cls.pattern) for cls in classes}) == 20
    assert len({cls.name for cls in classes}) == 20
    for first, second in zip(classes[::2], classes[1::2], strict=True):
        assert first.shape == second.shape and first.colour != second.colour


def test_background_does_not_depend_on_class() -> None:
    spec = SyntheticSpec(image_size=48)
    images_per_class = 40
    means = np.array(
        [
            [
                image[mask == 0].astype(float).mean(0)
                for image, mask in (
                    render_sample(spec, class_index, sample_rng(0, "train", class_index, index))
                    for index in range(images_per_class)
                )
            ]
            for class_index in range(spec.num_classes)
        ]
    )  # (class, image, channel): mean background colour of each image
    spread_between_classes = means.mean(1).std(0)
    spread_between_images = means.reshape(-1, 3).std(0)
    # class means should vary only like sampling noise, about 1/sqrt(40) = 0.16 of the image spread
    assert (spread_between_classes < 0.35 * spread_between_images).all()


def test_background_draws_are_shared_across_classes() -> None:
    spec = SyntheticSpec(image_size=48)
    images = [render_sample(spec, c, np.random.default_rng(3))[0] for c in range(spec.num_classes)]
    masks = [render_sample(spec, c, np.random.default_rng(3))[1] for c in range(spec.num_classes)]
    untouched = np.logical_and.reduce([mask == 0 for mask in masks])
    # same random stream, different classes: the clutter is drawn first and identically; only the
    # object and the grain drawn after it differ
    first = images[0][untouched].astype(int)
    for image in images[1:]:
        assert np.abs(image[untouched].astype(int) - first).mean() < 12


def test_cache_is_reused_and_regenerated_when_parameters_change(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "cache", SMALL)
    marker = root / "generator.json"
    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    generate_synthetic(root, SMALL)
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()} == stamps

    smaller = SyntheticSpec(**{**SMALL.__dict__, "num_classes": 2, "train_per_class": 1})
    generate_synthetic(root, smaller)
    assert json.loads(marker.read_text())["num_classes"] == 2
    assert len(read_annotations(root)) == 2 * (1 + SMALL.test_per_class)
    assert not (root / "train" / SMALL.class_names[2]).exists()
    assert len(list((root / "train").rglob("*.png"))) == 2


def test_interrupted_generation_is_not_reused(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "cache", SMALL)
    manifest = json.loads((root / "generator.json").read_text())
    # as if the run had stopped half-way: the manifest still says "incomplete", one image is cut short
    (root / "generator.json").write_text(json.dumps({**manifest, "complete": False}))
    image = root / "train" / SMALL.class_names[0] / "00000.png"
    complete = image.read_bytes()
    image.write_bytes(b"partial")
    generate_synthetic(root, SMALL)
    assert json.loads((root / "generator.json").read_text())["complete"] is True
    assert image.read_bytes() == complete


def test_a_folder_of_someone_elses_images_is_refused_and_left_untouched(tmp_path: Path) -> None:
    root = tmp_path / "my-photos"
    for split in ("train", "test"):
        (root / split / "cats").mkdir(parents=True)
        (root / split / "cats" / "tom.jpg").write_bytes(b"a user's photo")
    before = file_bytes(root)
    with pytest.raises(FileExistsError, match=r"not made by the synthetic generator"):
        generate_synthetic(root, SMALL)
    assert file_bytes(root) == before


def test_regeneration_removes_only_the_files_the_generator_wrote(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "cache", SMALL)
    kept = root / "train" / SMALL.class_names[2] / "notes.txt"
    kept.write_text("added by a user")
    generate_synthetic(root, SyntheticSpec(**{**SMALL.__dict__, "num_classes": 2}))
    assert kept.read_text() == "added by a user"
    assert not list(kept.parent.glob("*.png"))
    assert not (root / "masks" / "train" / SMALL.class_names[2]).exists()


def test_an_empty_folder_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert len(read_annotations(generate_synthetic(tmp_path / "empty", SMALL))) == 3 * 6


@pytest.mark.parametrize(
    ("parameter", "value", "allowed"),
    [
        ("num_classes", 1, "2..20"),
        ("num_classes", 21, "2..20"),
        ("train_per_class", 0, ">= 1"),
        ("test_per_class", 0, ">= 1"),
        ("image_size", 31, "32..1024"),
        ("image_size", 64.0, "32..1024"),
        ("seed", -1, ">= 0"),
    ],
)
def test_invalid_spec_names_the_parameter(parameter: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError, match=rf"{parameter} must .*{allowed}"):
        SyntheticSpec(**{parameter: value})


def test_render_rejects_unknown_class_index() -> None:
    with pytest.raises(ValueError, match="class_index"):
        render_sample(SyntheticSpec(num_classes=3), 3, np.random.default_rng(0))
