from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from mixlib.mixing import METHODS, create_batch_transform  # noqa: E402
from mixlib.models import create_model  # noqa: E402
from mixlib.report import mixing_chapter  # noqa: E402

EXPLANATIONS = Path(__file__).resolve().parents[1] / "book" / "methods.yml"


def test_every_mixing_method_is_explained_with_a_formula_and_source():
    explanations = mixing_chapter.load_explanations(EXPLANATIONS)
    assert {method.name for method in METHODS} | {"none"} == set(explanations)
    for name, entry in explanations.items():
        assert entry["title"] and len(entry["text"].split()) >= 20 and entry["formula"], name
        assert entry["source"] or name == "none", name
        assert "$$" in mixing_chapter.explanation_markdown(name, entry)


def test_gallery_titles_carry_the_label_weights():
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    model = create_model("resnet10t", num_classes=4, input_size=32)
    figure = mixing_chapter.plot_method_gallery("cutmix", images, labels, ["a", "b", "c", "d"], model)
    titles = [axis.get_title() for axis in figure.axes]
    assert len(titles) == 4 and all("+" in t or "λ" in t for t in titles)
    plain = mixing_chapter.plot_method_gallery("none", images, labels, ["a", "b", "c", "d"], model)
    assert all("λ = 1.00" in axis.get_title() for axis in plain.axes)


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
