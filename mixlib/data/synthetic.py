"""Embedded synthetic localisation data set: one object per image on class-independent clutter.

Used when no real data is available and as the default of the `quick` report profile. Nothing is
downloaded: the images are drawn here, deterministically from a seed, and cached on disk in an
image-folder layout with per-image masks and boxes.

Why it looks the way it does: the report measures the *discriminative region problem* (a class
activation map that lights up only the most telling part of an object scores poorly against the
whole-object box). So every object has two regions with very different amounts of class evidence:

- a large **body** that says little: its shape is shared by a pair of classes (by four classes
  beyond 10) and its colour comes from a class-independent palette;
- a small **part**, a square patch of about 8-15% of the object area at a random spot inside the
  body, whose colour and pattern name the class exactly.

The background is clutter drawn from the same random stream whatever the class, so it carries no
class information. Masks store 0 background, 1 body, 2 part; boxes are the tight box of the whole
object (x1/y1 exclusive).

The drawing is hand-written (with OpenCV's polygon filler) because no library makes this kind of
controlled object/part data; the per-image work is a few vectorised array operations, so thousands
of 64x64 images take a few seconds on one core.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from filelock import FileLock

from mixlib.checks import check_int
from mixlib.files import atomic_write_json

FORMAT_VERSION = 1  # bump whenever the drawing changes, so old caches are regenerated
GENERATOR = "mixlib.data.synthetic"
MANIFEST = "generator.json"  # marks a folder as this generator's: the only folders it writes into
LOCK = ".generator.lock"  # held while generating, inside the folder it guards
SPLITS = ("train", "test")
ANNOTATION_COLUMNS = ("split", "class", "file", "x0", "y0", "x1", "y1", "mask")
MASK_BACKGROUND, MASK_BODY, MASK_PART = 0, 1, 2
MAX_CLASSES = 20
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024


def _regular_polygon(corners: int, start_deg: float) -> np.ndarray:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(corners) / corners)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


# Body outlines as polygon vertices (x, y) inside the unit square [-1, 1]^2, y pointing down; the
# object radii and a small rotation map them into the image. Rotation is kept small (see
# `_object_pose`) because a box turned by 45 degrees would be a diamond.
BODY_SHAPES: dict[str, np.ndarray] = {
    "ellipse": _regular_polygon(36, 0.0),
    "box": 0.85 * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float),
    "triangle": np.array([[0.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]),
    "diamond": np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
    "cross": np.array(
        [[-0.4, -1], [0.4, -1], [0.4, -0.4], [1, -0.4], [1, 0.4], [0.4, 0.4],
         [0.4, 1], [-0.4, 1], [-0.4, 0.4], [-1, 0.4], [-1, -0.4], [-0.4, -0.4]],
        dtype=float,
    ),
}  # fmt: skip

# Saturated part colours (RGB); the body palette and the clutter are muted, so none of them repeats
# these.
PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (235, 30, 30),
    "green": (30, 205, 45),
    "blue": (35, 75, 245),
    "yellow": (245, 225, 20),
    "magenta": (230, 40, 225),
}
PART_INK_BACKGROUND = (20, 20, 20)


def _solid(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    return np.ones(np.broadcast_shapes(rows.shape, cols.shape), dtype=bool)


def _stripes(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    return ((rows + cols) // width) % 2 == 0


def _checks(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    return (rows // width + cols // width) % 2 == 0


def _dots(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    return ((rows // width) % 2 == 0) & ((cols // width) % 2 == 0)


# Part patterns: which pixels of the patch take the class colour (the rest is near-black ink).
PART_PATTERNS = {"solid": _solid, "stripes": _stripes, "checks": _checks, "dots": _dots}

# Class-independent body colours (RGB), muted so that the part stays the most telling region.
BODY_PALETTE = np.array(
    [
        (196, 178, 130),  # sand
        (116, 132, 150),  # slate
        (138, 136, 84),  # olive
        (178, 124, 100),  # clay
        (150, 172, 140),  # sage
        (156, 134, 124),  # taupe
        (124, 144, 176),  # steel
        (204, 192, 170),  # bone
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SyntheticClass:
    """One class: a body shape shared with other classes and a part (colour, pattern) of its own."""

    shape: str
    colour: str
    pattern: str

    @property
    def name(self) -> str:
        return f"{self.shape}-{self.colour}-{self.pattern}"


def synthetic_classes(num_classes: int) -> list[SyntheticClass]:
    """The class table: classes 2k and 2k+1 share a body shape and differ in part colour and pattern.

    Part colour cycles fastest and the pattern shifts by one per round of colours, so every
    (colour, pattern) pair is used at most once for up to 20 classes.
    """
    shapes, colours, patterns = list(BODY_SHAPES), list(PART_COLOURS), list(PART_PATTERNS)
    table = []
    for index in range(num_classes):
        colour_round, colour = divmod(index, len(colours))
        table.append(
            SyntheticClass(
                shape=shapes[(index // 2) % len(shapes)],
                colour=colours[colour],
                pattern=patterns[(colour_round + colour) % len(patterns)],
            )
        )
    return table


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the embedded data set; equal specs give byte-identical caches."""

    num_classes: int = 10
    train_per_class: int = 400
    test_per_class: int = 100
    image_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, 2, MAX_CLASSES)
        check_int("train_per_class", self.train_per_class, 1, None)
        check_int("test_per_class", self.test_per_class, 1, None)
        check_int("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        check_int("seed", self.seed, 0, None)

    @property
    def class_names(self) -> list[str]:
        return [cls.name for cls in synthetic_classes(self.num_classes)]


def sample_rng(seed: int, split: str, class_index: int, index: int) -> np.random.Generator:
    """The random stream of one image: independent of how many other images are generated."""
    return np.random.default_rng([seed, SPLITS.index(split), class_index, index])


def _polygon(outline: np.ndarray, centre: np.ndarray, radii: np.ndarray, angle: float) -> np.ndarray:
    """`outline` scaled by `radii`, turned by `angle` (radians), moved to `centre`, in 1/16 pixel.

    The fixed-point vertices (OpenCV's `shift=4`) keep small shapes from snapping to whole pixels.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    points = (outline * radii) @ np.array([[cos, sin], [-sin, cos]]) + centre
    return np.round(points * 16).astype(np.int32)


def _fill_mask(size: int, polygon: np.ndarray) -> np.ndarray:
    canvas = np.zeros((size, size), dtype=np.uint8)
    cv2.fillPoly(canvas, [polygon], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.view(bool)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Clutter: a smooth colour field under 8-14 semi-transparent sticks and blobs of any body shape.

    All random draws are made up front and in a fixed order, none depending on the class.
    """
    field = rng.uniform(70, 180) + rng.normal(0, 22, size=(4, 4, 3))
    image = cv2.resize(field.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    outlines = list(BODY_SHAPES.values())
    count = rng.integers(8, 15)
    kinds = rng.integers(len(outlines), size=count)
    radii = rng.uniform([0.03, 0.01], [0.14, 0.14], size=(count, 2)) * size
    centres = rng.uniform(0, size, size=(count, 2))
    angles = rng.uniform(0, np.pi, size=count)
    colours = np.clip(rng.uniform(30, 225, size=(count, 1)) + rng.normal(0, 18, size=(count, 3)), 0, 255)
    alphas = rng.uniform(0.35, 0.75, size=count)
    for kind, radius, centre, angle, colour, alpha in zip(
        kinds, radii, centres, angles, colours, alphas, strict=True
    ):
        layer = image.copy()
        polygon = _polygon(outlines[kind], centre, radius, angle)
        cv2.fillPoly(layer, [polygon], colour.tolist(), lineType=cv2.LINE_8, shift=4)
        # outside the polygon layer == image, so the blend changes only the clutter item
        cv2.addWeighted(layer, alpha, image, 1 - alpha, 0, dst=image)
    return image


def _object_pose(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Random centre, radii and rotation with the whole object inside the image."""
    radius = rng.uniform(0.16, 0.28) * size
    aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    radii = radius * np.array([np.sqrt(aspect), 1 / np.sqrt(aspect)])
    angle = rng.uniform(-np.pi / 9, np.pi / 9)
    # Every outline lies in the unit square, so the turned square's extent bounds the object.
    cos, sin = abs(np.cos(angle)), abs(np.sin(angle))
    extent = np.array([radii[0] * cos + radii[1] * sin, radii[0] * sin + radii[1] * cos])
    centre = rng.uniform(extent, size - 1 - extent)
    return centre, radii, angle


def _paint_body(image: np.ndarray, body: np.ndarray, interior: np.ndarray, rng: np.random.Generator) -> None:
    """Palette colour with soft directional shading and a dark outline, so the object reads as one."""
    colour = BODY_PALETTE[rng.integers(len(BODY_PALETTE))] + rng.normal(0, 6, 3)
    rows, cols = np.nonzero(body)
    direction = rng.normal(size=2)
    along = rows * direction[0] + cols * direction[1]
    along = (along - along.mean()) / (np.ptp(along) + 1e-6)
    shading = 1.0 + 0.3 * along[:, None]
    image[rows, cols] = colour * shading
    image[body & ~interior] *= 0.5


def _part_site(interior: np.ndarray, area: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """Top-left corner and side of a square of about `area` pixels lying fully inside `interior`."""
    for side in range(max(2, round(np.sqrt(area))), 1, -1):
        # erode with the kernel anchored at its corner: 1 where the side x side square from here fits
        fits = cv2.erode(
            interior.view(np.uint8),
            np.ones((side, side), np.uint8),
            anchor=(0, 0),
            borderType=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        corners = np.flatnonzero(fits)
        if corners.size:
            row, col = divmod(int(corners[rng.integers(corners.size)]), interior.shape[1])
            return row, col, side
    raise RuntimeError("object too small to hold a part; image_size validation should prevent this")


def render_sample(
    spec: SyntheticSpec, class_index: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one image of class `class_index`: (H, W, 3) uint8 RGB image and (H, W) uint8 mask.

    The background is drawn first from `rng`, with draws that never depend on the class, so clutter
    statistics are the same in every class.
    """
    check_int("class_index", class_index, 0, spec.num_classes - 1)
    cls = synthetic_classes(spec.num_classes)[class_index]
    size = spec.image_size
    image = _background(size, rng)

    body = _fill_mask(size, _polygon(BODY_SHAPES[cls.shape], *_object_pose(size, rng)))
    interior = cv2.erode(body.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    _paint_body(image, body, interior, rng)
    row, col, side = _part_site(interior, rng.uniform(0.08, 0.15) * body.sum(), rng)
    stripe = max(1, size // 32)
    cells = np.arange(side)
    ink = PART_PATTERNS[cls.pattern](cells[:, None], cells[None, :], stripe)
    patch = np.where(ink[..., None], PART_COLOURS[cls.colour], PART_INK_BACKGROUND)
    image[row : row + side, col : col + side] = patch

    image += 4 * rng.standard_normal(image.shape, dtype=np.float32)  # sensor-like grain everywhere
    mask = body.astype(np.uint8)
    mask[row : row + side, col : col + side] = MASK_PART
    return np.clip(image, 0, 255).astype(np.uint8), mask


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1) of the nonzero pixels, x1/y1 exclusive."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("mask has no object pixels")
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def generator_parameters(spec: SyntheticSpec) -> dict:
    """What `generator.json` records; a cache is reused only when this matches exactly."""
    return {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        **asdict(spec),
        "classes": spec.class_names,
    }


def owned_manifest(root: Path) -> dict | None:
    """The folder's `generator.json` if this generator wrote it, else None (also when unreadable)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("generator") == GENERATOR else None


def check_synthetic_root(root: Path | str) -> None:
    """Refuse a folder the generator may not write into: only a new or empty folder, or its own.

    The generator removes what it wrote before when its parameters change, so pointed at a user's
    image folder it would replace their images; a folder is its own when its `generator.json` says so.
    """
    root = Path(root)
    if not root.exists() or owned_manifest(root) is not None:
        return
    if not root.is_dir():
        raise NotADirectoryError(f"data_root={str(root)!r} for the synthetic dataset is not a folder")
    if any(path.name != LOCK for path in root.iterdir()):  # a lock file alone: an interrupted start
        raise FileExistsError(
            f"data_root={str(root)!r} is not empty and was not made by the synthetic generator (it has "
            f"no {MANIFEST} of it); the synthetic dataset only writes into a new or empty folder, or "
            "one it generated before. Leave data_root unset (the cache in .cache/) or name a new folder."
        )


def _remove_generated(root: Path, manifest: dict) -> None:
    """Delete the files an earlier generation listed in its manifest, then the folders it emptied.

    Only file names this generator writes are removed, so anything else found in the folders (and
    the folders holding it) stays.
    """
    try:
        counts = {"train": int(manifest["train_per_class"]), "test": int(manifest["test_per_class"])}
        classes = [str(name) for name in manifest["classes"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{root / MANIFEST} is damaged ({error!r}); delete the folder {root} to regenerate it"
        ) from error
    (root / "annotations.csv").unlink(missing_ok=True)
    for split, count in counts.items():
        for name in classes:
            folders = (root / split / name, root / "masks" / split / name)
            for folder in folders:
                for index in range(count):
                    (folder / f"{index:05d}.png").unlink(missing_ok=True)
                _remove_if_empty(folder)
            _remove_if_empty(root / split)
            _remove_if_empty(root / "masks" / split)
    _remove_if_empty(root / "masks")


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _write_png(path: Path, array: np.ndarray) -> None:
    pixels = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    if not cv2.imwrite(str(path), pixels):
        raise OSError(f"could not write {path}")


def _write_split(root: Path, spec: SyntheticSpec, split: str, per_class: int) -> list[tuple]:
    rows = []
    for class_index, name in enumerate(spec.class_names):
        image_dir, mask_dir = root / split / name, root / "masks" / split / name
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image, mask = render_sample(spec, class_index, sample_rng(spec.seed, split, class_index, index))
            file_name = f"{index:05d}.png"
            _write_png(image_dir / file_name, image)
            _write_png(mask_dir / file_name, mask)
            image_path = f"{split}/{name}/{file_name}"
            mask_path = f"masks/{split}/{name}/{file_name}"
            rows.append((split, name, image_path, *mask_box(mask), mask_path))
    return rows


def generate_synthetic(root: Path | str, spec: SyntheticSpec) -> Path:
    """Generate (or reuse) the data set under `root` while holding a lock file inside it.

    Several runs (Dask workers) may start on a missing cache at once: one draws it, the others wait
    for it and then reuse it. The lock file lives in `root`, which the generator creates anyway, so
    nothing is left in the folder above it (a user's, with `--data-root`).
    """
    root = Path(root)
    check_synthetic_root(root)  # before the folder or its lock file is created
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / LOCK):
        return _generate_synthetic(root, spec)


def _generate_synthetic(root: Path, spec: SyntheticSpec) -> Path:
    """Generate the data set under `root` (or reuse it when `generator.json` matches) and return `root`.

    Layout: `train/<class>/<id>.png`, `test/<class>/<id>.png`, masks in `masks/<split>/<class>/<id>.png`,
    `annotations.csv` (split, class, file, x0, y0, x1, y1, mask; paths relative to `root`) and
    `generator.json`, the manifest: written before the first image with `complete: false` (it claims
    the folder) and again, complete, after the last, so an interrupted run is regenerated, not reused.
    `root` must be new, empty or generated here before (`check_synthetic_root`).
    """
    root = Path(root)
    check_synthetic_root(root)
    parameters = generator_parameters(spec)
    manifest = owned_manifest(root)
    if manifest == {**parameters, "complete": True}:
        return root
    root.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        _remove_generated(root, manifest)
    atomic_write_json(root / MANIFEST, {**parameters, "complete": False})
    rows = []
    for split, per_class in zip(SPLITS, (spec.train_per_class, spec.test_per_class), strict=True):
        rows += _write_split(root, spec, split, per_class)
    with open(root / "annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ANNOTATION_COLUMNS)
        writer.writerows(rows)
    atomic_write_json(root / MANIFEST, {**parameters, "complete": True})
    return root
