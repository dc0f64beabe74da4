import shutil
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from mixlib.data import (
    MAX_PIXELS_PER_PIXEL,
    AnnotatedImageDataset,
    BatchAugment,
    load_splits,
    load_training_images,
    stratified_split,
)
from mixlib.data.records import ImageRecord
from mixlib.data.sources import image_folder_source, tiny_imagenet_source
from mixlib.data.splits import readable, stratified_indices

from helpers import write_image_folder


def test_tiny_imagenet_layout_and_boxes(tiny_imagenet_root):
    source = tiny_imagenet_source(str(tiny_imagenet_root))
    assert len(source.classes) == 10 and source.has_boxes
    assert len(source.test) == 500
    first = next(r for r in source.train_pool if r.path.name == "n01641577_0.JPEG")
    assert first.box == (0.0, 22.0, 64.0, 61.0)  # inclusive corners 0 22 63 60 in the file
    assert source.class_names[source.classes.index("n01641577")]


def test_splits_are_fixed_stratified_and_disjoint(tiny_imagenet_root):
    a = load_splits("tiny-imagenet", str(tiny_imagenet_root), images_per_class=30, val_per_class=10)
    b = load_splits("tiny-imagenet", str(tiny_imagenet_root), images_per_class=30, val_per_class=10)
    assert [r.path for r in a.train] == [r.path for r in b.train]
    assert np.bincount([r.label for r in a.train]).tolist() == [30] * 10
    assert np.bincount([r.label for r in a.val]).tolist() == [10] * 10
    assert not {r.path for r in a.train} & {r.path for r in a.val}
    assert not {r.path for r in a.train + a.val} & {r.path for r in a.test}
    other = load_splits("tiny-imagenet", str(tiny_imagenet_root), 30, 10, split_seed=1)
    assert [r.path for r in other.train] != [r.path for r in a.train]


def test_image_folder_source(image_folder):
    source = image_folder_source(str(image_folder))
    assert source.classes == ["class0", "class1", "class2"]
    assert len(source.train_pool) == 30 and len(source.test) == 12
    assert not source.has_boxes


def test_too_few_images_is_a_clear_error(image_folder):
    with pytest.raises(ValueError, match="fewer readable training images than images_per_class"):
        load_splits("imagefolder", str(image_folder), images_per_class=9, val_per_class=2)


@pytest.mark.parametrize(
    ("dataset", "root", "message"),
    [
        ("tiny-imagenet", None, "needs data_root"),
        ("imagefolder", "/nonexistent/folder", "is not a directory"),
        ("cifar-11", None, "unknown dataset 'cifar-11'; allowed values"),
    ],
)
def test_missing_or_unknown_data_is_a_clear_error(dataset, root, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_splits(dataset, root)


def test_stratified_split_reports_short_classes():
    records = [ImageRecord(path=f"{i}.png", label=i % 2) for i in range(6)]
    train, val, short = stratified_split(records, 2, 2, 1, seed=0, usable=lambda record: True)
    assert len(train) == 4 and len(val) == 2 and short == {}
    train, val, short = stratified_split(records, 3, 2, 1, seed=0, usable=lambda record: True)
    assert len(train) == 4 and short == {2: 0}


def short_class_folder(root):
    """cats: 10 images; empty: none; few: 2; each with 2 test images."""
    write_image_folder(root, classes=1, train=10, test=2)
    (root / "train" / "class0").rename(root / "train" / "cats")
    (root / "test" / "class0").rename(root / "test" / "cats")
    (root / "train" / "empty").mkdir()
    for name, count in (("few", 2), ("dogs", 10)):
        shutil.copytree(root / "train" / "cats", root / "train" / name)
        for extra in sorted((root / "train" / name).glob("*.png"))[count:]:
            extra.unlink()
        shutil.copytree(root / "test" / "cats", root / "test" / name)
    return root


def test_short_classes_are_all_named_by_folder(tmp_path):
    root = short_class_folder(tmp_path / "data")
    with pytest.raises(
        ValueError,
        match=r"2 class folder\(s\) .* fewer readable training images than "
        r"images_per_class \+ val_per_class = 7: 'empty' \(0\), 'few' \(2\); .*short_classes: drop",
    ):
        load_splits("imagefolder", str(root), images_per_class=5, val_per_class=2)


def test_short_classes_can_be_dropped(tmp_path):
    root = short_class_folder(tmp_path / "data")
    with pytest.warns(UserWarning, match="dropped"):
        splits = load_splits("imagefolder", str(root), 5, 2, short_classes="drop")
    assert splits.classes == ["cats", "dogs"] and splits.dropped_classes == ["empty", "few"]
    assert np.bincount([r.label for r in splits.train]).tolist() == [5, 5]
    assert sorted({r.path.parent.name for r in splits.test}) == ["cats", "dogs"]
    assert {r.label for r in splits.test} == {0, 1}


def test_unreadable_images_are_left_out_before_the_split_is_drawn(tmp_path):
    root = write_image_folder(tmp_path / "data", classes=2, train=8, test=2)
    drawn = load_splits("imagefolder", str(root), images_per_class=5, val_per_class=2)
    broken = next(r.path for r in drawn.train if r.label == 1)  # an image the split would take
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        splits = load_splits("imagefolder", str(root), images_per_class=5, val_per_class=2)
    assert np.bincount([r.label for r in splits.train]).tolist() == [5, 5]
    assert np.bincount([r.label for r in splits.val]).tolist() == [2, 2]
    assert broken not in {r.path for r in splits.train + splits.val}
    assert splits.skipped == [str(broken)]


def declaring_png(path, width: int, height: int):
    """A PNG of a few bytes whose header declares width x height pixels (its pixel data is 8x8)."""
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR: after the signature, length and type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_an_image_declaring_too_many_pixels_is_skipped_before_decoding(tmp_path):
    root = write_image_folder(tmp_path / "data", classes=2, train=8, test=2)
    huge = declaring_png(root / "train" / "class1" / "000.png", 10_000, 10_000)  # class1 needs all 8 files
    message = r"000\.png: it declares 10000x10000 pixels, more than the 65536 allowed"
    with pytest.warns(UserWarning, match=message):
        splits = load_splits("imagefolder", str(root), images_per_class=6, val_per_class=1, image_size=32)
    assert splits.skipped == [str(huge)]  # counted with the unreadable files


@pytest.mark.parametrize(("width", "usable"), [(256, True), (257, False)])
def test_the_pixel_bound_is_64_times_the_runs_pixel_count(tmp_path, width, usable):
    path = tmp_path / "image.png"
    Image.new("RGB", (width, 256)).save(path)
    with warnings.catch_warnings(record=True):
        assert readable(ImageRecord(path, 0), max_pixels=MAX_PIXELS_PER_PIXEL * 32**2) is usable


def test_corrupt_image_is_skipped_with_a_warning(tmp_path, image_folder):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    good = next((image_folder / "train" / "class0").glob("*.png"))
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        dataset = AnnotatedImageDataset([ImageRecord(good, 0), ImageRecord(broken, 1)], v2.Identity())
    assert len(dataset) == 1 and dataset.skipped == [str(broken)]


def test_boxes_and_masks_follow_the_training_augmentation():
    splits = load_splits("synthetic", images_per_class=4, val_per_class=1, test_per_class=1, image_size=64)
    stored = load_training_images(splits.train, 64, torch.device("cpu")).images
    out = BatchAugment(64, crop_scale_min=0.5)(
        stored.images, torch.Generator().manual_seed(0), stored.boxes, stored.masks
    )
    checked = 0
    for box, mask in zip(out.boxes, out.masks, strict=True):
        rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
        if len(rows) == 0:
            continue
        tight = torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)
        # the box is transformed geometrically, the mask resampled: they agree to resampling error,
        # except where the crop cut the object (the clamped box is then looser than the visible part)
        assert (tight[:2] >= box[:2] - 2.5).all() and (tight[2:] <= box[2:] + 2.5).all(), (box, tight)
        if box[0] > 0 and box[1] > 0 and box[2] < 64 and box[3] < 64:
            assert torch.allclose(box, tight, atol=2.5), (box, tight)
            checked += 1
    assert checked >= 1


def test_flip_moves_the_box():
    splits = load_splits("synthetic", images_per_class=2, val_per_class=1, test_per_class=1, image_size=32)
    record = splits.train[0]
    plain = AnnotatedImageDataset([record], v2.Identity())[0]
    flipped = AnnotatedImageDataset([record], v2.RandomHorizontalFlip(p=1.0))[0]
    x0, y0, x1, y1 = plain["box"].tolist()
    assert flipped["box"].tolist() == [32 - x1, y0, 32 - x0, y1]
    assert torch.equal(flipped["mask"], plain["mask"].flip(-1))


def test_no_warning_for_clean_data(image_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = load_splits("imagefolder", str(image_folder), images_per_class=5, val_per_class=2)
        AnnotatedImageDataset(splits.train, v2.Identity())


def test_stratified_indices_spread_a_seeded_sample_over_every_class():
    labels = np.repeat(np.arange(10), 20)  # sorted by class, as the test split is
    sample = stratified_indices(labels, 32, seed=0)
    counts = np.bincount(labels[sample], minlength=10)
    assert len(sample) == 32 and len(set(sample)) == 32 and (np.diff(sample) > 0).all()
    assert counts.min() == 3 and counts.max() == 4  # as even as 32 over 10 classes allows
    assert np.array_equal(sample, stratified_indices(labels, 32, seed=0))
    assert not np.array_equal(sample, stratified_indices(labels, 32, seed=1))
    uneven = np.array([0] * 30 + [1] * 2)
    assert np.bincount(uneven[stratified_indices(uneven, 6, seed=0)]).tolist() == [4, 2]
    assert np.array_equal(stratified_indices(labels[:5], 32, seed=0), np.arange(5))
    with pytest.raises(ValueError, match="count must be a positive integer"):
        stratified_indices(labels, 0, seed=0)
