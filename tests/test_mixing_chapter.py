from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from mixlib.chapters import mixing as mixing_chapter  # noqa: E402
from mixlib.mixing import METHODS, create_batch_transform  # noqa: E402
from mixlib.models import create_model  # noqa: E402

EXPLANATIONS = Path(__file__).resolve().parents[1] / "book" / "methods.yml"


def test_every_mixing_method_is_explained_with_a_formula_and_source():
    explanations = mixing_chapter.load_explanations(EXPLANATIONS)
    assert {method.name for method in METHODS} | {"none"} == set(explanations)
    for name, entry in explanations.items():
        assert entry["title"] and len(entry["text"].split()) >= 20 and entry["formula"], name
        assert entry["source"] or name == "none", name
        assert "$$" in mixing_chapter.explanation_markdown(name, entry)


def test_gallery_titles_carry_each_images_labels_and_weights():
    images, labels, names = (
        torch.randn(4, 3, 32, 32),
        torch.tensor([0, 1, 2, 3]),
        ["ant", "bee", "cat", "dog"],
    )
    model = create_model("resnet10t", num_classes=4, input_size=32)
    figure = mixing_chapter.plot_method_gallery("cutmix", images, labels, names, model, seed=3)
    # the batch the gallery shows: CutMix forced on, drawn from the gallery's seed
    batch = create_batch_transform("cutmix", p=1.0)(
        images, labels, generator=torch.Generator().manual_seed(3)
    )
    expected = [
        f"{names[int(a)]} {float(lam):.2f}\n+ {names[int(b)]} {1 - float(lam):.2f}"
        for a, b, lam in zip(batch.targets_a, batch.targets_b, batch.lam, strict=True)
    ]
    assert [axis.get_title() for axis in figure.axes] == expected
    assert all(0 < float(lam) < 1 for lam in batch.lam) and not torch.equal(batch.targets_a, batch.targets_b)
    plain = mixing_chapter.plot_method_gallery("none", images, labels, names, model)
    assert [axis.get_title() for axis in plain.axes] == [f"{name}\nλ = 1.00" for name in names]


def test_resizemix_and_random_erasing_are_explained_as_the_code_draws_them():
    explanations = mixing_chapter.load_explanations()
    resizemix = explanations["resizemix"]
    # 1 - tau^2 ignores the clipping of the box at the border: mean 0.76 where the code averages 0.83
    assert "1 - \\tau^2'" not in resizemix["formula"] and "\\cap" in resizemix["formula"]
    assert "clipped" in resizemix["text"]
    transform = create_batch_transform("resizemix", p=1.0)
    images, labels = torch.rand(512, 3, 64, 64), torch.arange(512)
    lam = transform(images, labels, generator=torch.Generator().manual_seed(0)).lam.mean()
    assert abs(float(lam) - 0.83) < 0.02  # the figure the text quotes
    erasing = explanations["random_erasing"]
    assert "noise" not in erasing["text"] and "zero" in erasing["text"]  # the code erases to 0
