"""Proxy Attention: schedule and parameter validation, selection, alteration, the callback's data
handling (training set only, clear/keep), exact resume, and what a run records."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from mixlib.chapters import proxy as proxy_chapter
from mixlib.config import RunConfig
from mixlib.data import AnnotatedImageDataset, ResidentImages, denormalise
from mixlib.losses import MixedBatch
from mixlib.proxy import (
    ProxyAttention,
    ProxySettings,
    alter_images,
    parse_schedule,
    select_misclassified,
)
from mixlib.proxy.images import to_uint8
from mixlib.run_data import build_eval_dataset, load_config_splits
from mixlib.runs import RunFolder, build_trainer, check_recipe, create_recipe, run_folder, train_run
from mixlib.training import Callback, Trainer, predict

from helpers import write_run_folder

KEEP = {"schedule": [1, "p", "p"], "fraction": 0.5}


@pytest.fixture(scope="module")
def proxy_config(tiny_config) -> RunConfig:
    """Three epochs of Proxy Attention whose proxy steps make images in epochs 2 and 3."""
    return tiny_config.replace(method="proxy", method_params=KEEP, epochs=3)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread for the module


# -- schedule and parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "proxy_epochs", "epochs"),
    [
        ([5, "p", 9, "p", 9, "p", 9, "p", 4], (6, 16, 26, 36), 40),
        ([1, "p", "p"], (2, 3), 3),
        ([2, 3], (), 5),
        ({"every": 3, "count": 2}, (3, 6), 6),
        ({"every": 2, "count": 1}, (2,), 2),
    ],
)
def test_schedule_forms(schedule, proxy_epochs, epochs):
    parsed = parse_schedule(schedule)
    assert parsed.proxy_epochs == proxy_epochs
    parsed.check_fits(epochs)
    with pytest.raises(ValueError, match="method_params.schedule covers"):
        parsed.check_fits(epochs - 1)


def test_every_count_equals_its_thesis_form():
    assert (
        parse_schedule({"every": 3, "count": 2}).proxy_epochs
        == parse_schedule([2, "p", 2, "p", 1]).proxy_epochs
    )


@pytest.mark.parametrize(
    "schedule",
    [
        ["p", 2],  # a proxy epoch needs a model trained for at least one epoch
        [1, "p", 0],  # zero epochs
        [-1, "p"],
        [1.0, "p"],  # wrong types
        [True, "p"],
        [1, "P"],
        [1, None],
        [],
        "p",
        3,
        None,
        {"every": 3},  # missing key
        {"every": 3, "count": 1, "start": 1},  # unknown key
        {"every": 1, "count": 2},  # every epoch from the first: a proxy epoch first
        {"every": 2, "count": 0},
        {"every": 2.0, "count": 1},
    ],
    ids=repr,
)
def test_malformed_schedules_are_rejected(schedule):
    with pytest.raises(ValueError, match=r"method_params\.schedule.*every: k, count: n"):
        parse_schedule(schedule)


@pytest.mark.parametrize(
    ("method_params", "message"),
    [
        ({"schedule": ["p", 2, 1]}, r"method_params\.schedule"),
        ({"schedule": [1, "p", 2]}, r"covers 4 epochs but the run has epochs = 3"),
        ({}, r"covers 40 epochs"),  # the reference schedule does not fit a 3-epoch run
        ({**KEEP, "fractoin": 0.2}, r"unknown method_params \['fractoin'\].*allowed: schedule"),
        ({**KEEP, "fraction": 0.0}, r"method_params\.fraction must be a number in \(0\.0, 1\.0\]"),
        ({**KEEP, "threshold": 1.5}, r"method_params\.threshold"),
        ({**KEEP, "weight": -0.1}, r"method_params\.weight"),
        ({**KEEP, "selection": "worst"}, r"method_params\.selection 'worst'; allowed values: first"),
        ({**KEEP, "cam_class": "target"}, r"method_params\.cam_class"),
        ({**KEEP, "cam_method": "gradcamplusplus"}, r"method_params\.cam_method"),
        ({**KEEP, "replacement": "zero"}, r"method_params\.replacement"),
        ({**KEEP, "clear_every_step": "yes"}, r"method_params\.clear_every_step"),
        ({**KEEP, "cam_batch_size": 0}, r"method_params\.cam_batch_size"),
        ({**KEEP, "mixing": "proxy"}, r"unknown method_params\.mixing 'proxy'; allowed values: .*cutmix"),
        ({**KEEP, "mixing": "cutmix", "mixing_params": {"alpha": -1}}, r"mixing_params: .*alpha must be"),
        ({**KEEP, "mixing": "cutmxi"}, r"unknown method_params\.mixing 'cutmxi'"),
    ],
)
def test_bad_proxy_parameters_are_rejected_before_the_run(proxy_config, method_params, message):
    with pytest.raises(ValueError, match=message):
        check_recipe(proxy_config.replace(method_params=method_params))


def test_without_inner_mixing_a_batch_trains_as_it_comes(proxy_config):
    inputs, targets = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    plain = create_recipe(proxy_config).batch_transform(inputs, targets)
    assert isinstance(plain, MixedBatch) and torch.equal(plain.inputs, inputs) and torch.all(plain.lam == 1)


def test_reference_defaults():
    settings = ProxySettings()
    assert (settings.cam_method, settings.cam_class, settings.selection, settings.replacement) == (
        "gradcam++",
        "predicted",
        "first",
        "blended",
    )
    assert (settings.threshold, settings.weight, settings.fraction) == (0.85, 0.1, 0.2)
    assert settings.parsed_schedule.proxy_epochs == (6, 16, 26, 36)


# -- selection and alteration -----------------------------------------------------------------------


def predictions(losses_of_wrong: dict[int, float], size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels (all class 0) where exactly the given indices are wrong, with the given losses."""
    labels = torch.zeros(size, dtype=torch.long)
    logits = torch.zeros(size, 2)
    logits[:, 0] = 5.0
    for index, loss in losses_of_wrong.items():
        # CE of class 0 with logits (0, z) is log(1 + e^z): solve for z
        logits[index] = torch.tensor([0.0, math.log(math.expm1(loss))])
    return logits, labels


WRONG = {1: 2.0, 3: 5.0, 4: 1.0, 7: 4.0, 8: 3.0, 10: 6.0}  # index -> loss


def test_highest_loss_picks_the_largest_losses():
    logits, labels = predictions(WRONG)
    settings = ProxySettings(schedule=[1, "p"], fraction=0.5, selection="highest_loss")
    chosen = select_misclassified(logits, labels, settings, torch.Generator().manual_seed(0))
    assert chosen.tolist() == [10, 3, 7]  # losses 6, 5, 4; ceil(0.5 * 6) = 3


def test_first_found_follows_the_visiting_order():
    logits, labels = predictions(WRONG)
    settings = ProxySettings(schedule=[1, "p"], fraction=0.4, selection="first")
    chosen = select_misclassified(logits, labels, settings, torch.Generator().manual_seed(5))
    order = torch.randperm(12, generator=torch.Generator().manual_seed(5)).tolist()
    assert chosen.tolist() == [i for i in order if i in WRONG][:3]  # ceil(0.4 * 6) = 3


def test_random_selection_is_seeded_and_only_picks_misclassified():
    logits, labels = predictions(WRONG)
    settings = ProxySettings(schedule=[1, "p"], fraction=0.5, selection="random")

    def pick(seed):
        return select_misclassified(logits, labels, settings, torch.Generator().manual_seed(seed)).tolist()

    assert pick(1) == pick(1)
    assert len({tuple(pick(seed)) for seed in range(8)}) > 1
    assert all(set(pick(seed)) <= set(WRONG) and len(pick(seed)) == 3 for seed in range(8))


def test_nothing_misclassified_gives_no_proxies():
    logits, labels = predictions({})
    chosen = select_misclassified(logits, labels, ProxySettings(schedule=[1, "p"]), torch.Generator())
    assert chosen.numel() == 0


def images_and_cams(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    originals = torch.randint(0, 256, (5, 3, 16, 16), generator=generator, dtype=torch.uint8)
    cams = torch.rand(5, 16, 16, generator=generator)
    cams[:, 0, 0] = 1.0  # grad-cam maps reach 1 at their maximum
    return originals, cams


@pytest.mark.parametrize("change", [{"threshold": 1.0}, {"weight": 0.0}])
def test_threshold_one_or_weight_zero_leave_images_unchanged(change):
    originals, cams = images_and_cams()
    settings = ProxySettings(schedule=[1, "p"], **change)
    assert torch.equal(alter_images(originals, cams, settings), originals)


def test_blended_changes_only_hot_pixels_by_the_formula():
    originals, cams = images_and_cams(1)
    settings = ProxySettings(schedule=[1, "p"], threshold=0.6, weight=0.5)
    proxies = alter_images(originals, cams, settings)
    hot = (cams > 0.6).unsqueeze(1).expand_as(originals)
    assert torch.equal(proxies[~hot], originals[~hot])
    expected = ((1 - 0.5 * cams.unsqueeze(1)) * originals.float()).round().to(torch.uint8)
    assert torch.equal(proxies[hot], expected[hot])
    assert (proxies[hot] <= originals[hot]).all() and (proxies[hot] != originals[hot]).any()


@pytest.mark.parametrize(("replacement", "value"), [("max", 255), ("min", 0), ("halfmax", 128)])
def test_statistic_replacements_fill_hot_pixels(replacement, value):
    originals, cams = images_and_cams(2)
    cams[:, 1, 1] = 0.0  # every map spans [0, 1], as grad-cam's do
    proxies = alter_images(originals, cams, ProxySettings(schedule=[1, "p"], replacement=replacement))
    hot = (cams > 0.85).unsqueeze(1).expand_as(originals)
    assert (proxies[hot] == value).all() and torch.equal(proxies[~hot], originals[~hot])


# -- the callback on a real (untrained) trainer -----------------------------------------------------


def make_trainer(tmp_path: Path, config: RunConfig) -> tuple[Trainer, ProxyAttention]:
    """An untrained engine built as a run builds it, and its proxy callback (the hooks are called by
    hand)."""
    torch.manual_seed(0)
    recipe = create_recipe(config)
    return build_trainer(config, RunFolder(tmp_path), recipe, progress=False), recipe.callbacks[0]


def test_proxies_come_from_misclassified_training_images_only(tmp_path, proxy_config):
    config = proxy_config.replace(method_params={**KEEP, "threshold": 0.5, "weight": 1.0})
    trainer, callback = make_trainer(tmp_path, config)
    base, val_set = trainer.train_set, trainer.val_set
    callback.on_epoch_start(trainer, 1)
    assert trainer.train_set is base
    callback.on_epoch_start(trainer, 2)
    train_images = build_eval_dataset(trainer.config, trainer.splits.train)
    logits, labels = predict(trainer.model, trainer.eval_loader(train_images), trainer.device)
    misclassified = set((logits.argmax(1) != labels).nonzero().squeeze(1).tolist())
    (proxies,) = callback.kept
    assert len(proxies) == math.ceil(0.5 * len(misclassified)) > 0
    assert set(proxies.sources.tolist()) <= misclassified
    assert torch.equal(proxies.labels, labels[proxies.sources])
    grown = trainer.train_set
    assert isinstance(grown, ResidentImages) and len(grown) == len(base) + len(proxies)
    assert torch.equal(grown.images.images[len(base) :], proxies.images)  # stored side = image size
    assert torch.equal(grown.images.labels[len(base) :], proxies.labels)
    assert torch.equal(grown.images.images[: len(base)], base.images.images)  # the base is unchanged
    originals = to_uint8(
        denormalise(torch.stack([train_images[i]["image"] for i in proxies.sources.tolist()]))
    )
    assert (proxies.images <= originals).all() and (proxies.images != originals).any()  # blending darkens
    assert trainer.val_set is val_set
    record = {}
    callback.on_epoch_end(trainer, 2, record)
    assert trainer.train_set is base
    assert record["proxy_made"] == len(proxies) and record["proxy_misclassified"] == len(misclassified)
    assert record["proxy_seconds"] > 0


@pytest.mark.parametrize("clear", [True, False])
def test_clear_every_step_drops_proxies_and_keeping_accumulates(tmp_path, proxy_config, clear):
    config = proxy_config.replace(method_params={**KEEP, "clear_every_step": clear})
    trainer, callback = make_trainer(tmp_path, config)
    base = trainer.train_set
    sizes, made = [], []
    for epoch in (1, 2, 3):
        callback.on_epoch_start(trainer, epoch)
        sizes.append(len(trainer.train_set) - len(base))
        record = {}
        callback.on_epoch_end(trainer, epoch, record)
        assert record["proxy_used"] == sizes[-1] and trainer.train_set is base
        made.append(record["proxy_made"])
    assert sizes[0] == made[0] == 0 and sizes[1] == made[1] > 0
    assert sizes[2] == (made[2] if clear else made[1] + made[2])
    assert len(callback.kept) == (0 if clear else 2)
    assert sorted(p.name for p in (tmp_path / "proxy").glob("epoch*.pt")) == ["epoch002.pt", "epoch003.pt"]


# -- whole runs: exact resume, untouched validation/test data, records --------------------------------


class Interrupt(Exception):
    pass


class Watch(Callback):
    """Interrupts at an epoch, and checks what the trainer trains and validates on, epoch by epoch."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.interrupt_at = interrupt_at
        self.train_sizes: list[int] = []
        self.val_sets: set[int] = set()
        self.rates: list[float] = []  # the learning rate of every optimiser step

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.interrupt_at:
            raise Interrupt
        if epoch == 1:
            trainer.optimizer.register_step_pre_hook(
                lambda optimizer, *_: self.rates.append(optimizer.param_groups[0]["lr"])
            )
        self.train_sizes.append(len(trainer.train_set))
        self.val_sets.add(id(trainer.val_set))
        assert isinstance(trainer.val_set, AnnotatedImageDataset)


def eval_snapshot(config: RunConfig) -> dict:
    splits = load_config_splits(config)
    return {
        name: (
            [str(r.path) for r in records],
            torch.stack([s["image"] for s in build_eval_dataset(config, records)]),
        )
        for name, records in (("val", splits.val), ("test", splits.test))
    }


def folder_listing() -> list[str]:
    root = Path(os.environ["MIXLIB_CACHE"])
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, proxy_config):
    config = proxy_config
    root = tmp_path_factory.mktemp("proxy-runs")
    before, data_before = eval_snapshot(config), folder_listing()
    watch = Watch()
    straight = train_run(config, root / "straight" / "seed0", callbacks=[watch], progress=False)
    after, data_after = eval_snapshot(config), folder_listing()
    with pytest.raises(Interrupt):
        train_run(config, root / "resumed" / "seed0", callbacks=[Watch(interrupt_at=3)], progress=False)
    resumed = train_run(config, root / "resumed" / "seed0", progress=False)
    return dict(
        root=root,
        straight=straight,
        resumed=resumed,
        watch=watch,
        before=before,
        after=after,
        data_before=data_before,
        data_after=data_after,
    )


def test_resume_after_interrupt_gives_the_same_weights(runs):
    straight, resumed = runs["straight"], runs["resumed"]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert straight.metrics["accuracy"] == resumed.metrics["accuracy"]
    for key in ("made", "used", "misclassified", "proxy_epochs"):
        assert straight.metrics["proxy"][key] == resumed.metrics["proxy"][key], key


def test_the_rate_schedule_covers_the_proxy_batches_and_ends_with_the_last_step(runs):
    history, rates = runs["straight"].history, runs["watch"].rates
    extra = int(history["proxy_extra_steps"].sum())
    assert extra > 0  # the proxies added batches: the case the schedule must cover
    assert len(rates) == 3 * 3 + extra  # 60 images in batches of 16: 3 batches in a normal epoch
    assert min(rates) > 0  # no step trains at rate 0 (it did when the schedule counted 9 steps)
    assert rates == sorted(rates, reverse=True)  # tiny_config has no warm-up: the cosine only falls
    assert history["lr"].iloc[-1] == 0.0  # and it reaches 0 exactly after the run's last step


def test_validation_and_test_data_are_untouched(runs):
    for split in ("val", "test"):
        paths_before, images_before = runs["before"][split]
        paths_after, images_after = runs["after"][split]
        assert paths_before == paths_after and torch.equal(images_before, images_after)
        assert not any("proxy" in path for path in paths_after)
    assert runs["data_before"] == runs["data_after"]  # nothing was written into the dataset folder
    assert len(runs["watch"].val_sets) == 1  # one validation set object for the whole run
    train_paths = {str(r.path) for r in runs["straight"].splits.train}
    assert not train_paths & set(runs["after"]["val"][0]) and not train_paths & set(runs["after"]["test"][0])


def test_run_records_counts_and_time(runs):
    result = runs["straight"]
    proxy, history = result.metrics["proxy"], result.history
    assert proxy["proxy_epochs"] == [2, 3] and proxy["steps"] == 2
    assert list(history["proxy_step"]) == [0, 1, 1]
    assert proxy["made"] == history["proxy_made"].sum() > 0
    assert proxy["used"] == history["proxy_used"].sum()
    made2, made3 = history["proxy_made"].iloc[1], history["proxy_made"].iloc[2]
    assert list(history["proxy_used"]) == [0, made2, made2 + made3]  # kept: epoch 3 trains on both steps
    assert runs["watch"].train_sizes == [60, 60 + made2, 60 + made2 + made3]
    assert proxy["seconds"] == pytest.approx(history["proxy_seconds"].sum()) and proxy["seconds"] > 0
    assert 0 < proxy["share_of_time"] < 1
    examples = torch.load(RunFolder(result.run_dir).proxy_examples, weights_only=True)
    assert examples["epoch"] == 2 and examples["originals"].shape == examples["proxies"].shape
    assert examples["cams"].shape == examples["originals"].shape[:1] + examples["originals"].shape[2:]


# -- the report chapter -----------------------------------------------------------------------------


def write_run(folder: Path, config: RunConfig, test: float, val: float, proxy=None) -> None:
    """A finished run folder with just what the chapter reads."""
    metrics = {"accuracy": test, "localisation": {"max_box_acc_v2": 100 * test - 10}}
    if proxy is not None:
        metrics["proxy"] = proxy
    history = {"epoch": [1, 2, 3], "val_accuracy": [0.1, 0.2, val], "epoch_seconds": [1.0, 1.0, 1.0]}
    write_run_folder(folder, config, metrics, history)


PROXY_TOTALS = dict(
    steps=2, misclassified=40, made=8, used=12, extra_optimizer_steps=1, seconds=0.6, share_of_time=0.1
)


@pytest.fixture
def profile_runs(tmp_path, proxy_config):
    accuracies = {  # configuration -> (method, params, [(test, val) per seed])
        "baseline": ("none", {}, [(0.50, 0.50), (0.52, 0.50)]),
        "cutmix": ("cutmix", {"alpha": 1.0}, [(0.70, 0.55), (0.74, 0.55)]),
        "mixup": ("mixup", {}, [(0.90, 0.40), (0.91, 0.40)]),  # best on test, not on validation
        "cutout": ("cutout", {}, [(0.60, 0.60), (0.60, 0.60)]),  # best on validation, mixes no images
        "proxy": ("proxy", KEEP, [(0.51, 0.5), (0.55, 0.5)]),
    }
    for name, (method, params, seeds) in accuracies.items():
        for seed, (test, val) in enumerate(seeds):
            config = proxy_config.replace(method=method, method_params=params, seed=seed)
            proxy = PROXY_TOTALS if method == "proxy" else None
            write_run(run_folder(tmp_path, name, seed).path, config, test, val, proxy)
    return tmp_path


def test_chapter_picks_the_best_mixing_method_on_validation_and_calls_noise(profile_runs):
    names = ["baseline", "cutmix", "mixup", "cutout", "proxy"]
    report = proxy_chapter.load_report(profile_runs, names, [0, 1])
    assert report.proxy_names == ["proxy"] and report.baseline == "baseline"
    assert report.best_mixing == "cutmix"  # mixup is better on test, cutout is an erasing baseline
    table = proxy_chapter.comparisons(report).set_index(["reference", "metric"])
    against_baseline = table.loc[("baseline", "accuracy %")]
    # paired by seed: +1 and +3 points against the baseline, -19 and -19 against cutmix
    assert against_baseline["difference"] == pytest.approx(2.0)
    assert against_baseline["verdict"] == "no detectable difference" and against_baseline["seeds"] == 2
    assert (
        "without proxy steps" in against_baseline["role"]
    )  # inner mixing none: the baseline is the ablation
    against_cutmix = table.loc[("cutmix", "accuracy %")]
    assert against_cutmix["difference"] == pytest.approx(-19.0) and against_cutmix["verdict"] == "worse"
    assert table.loc[("baseline", "MaxBoxAccV2 %, τ from val"), "difference"] == pytest.approx(2.0)
    costs = proxy_chapter.cost_table(report)["proxy"]
    assert costs["proxies made per step"] == 4 and costs["share of training time %"] == 10
    text = proxy_chapter.conclusion(report)
    assert "is +2.00 points: no detectable difference, interval [" in text
    assert "is -19.00 points: worse, -19.00 [" in text and "[-19.00, -19.00]" not in text
    assert proxy_chapter.OUTCOMES["no detectable difference"] in text


def test_chapter_without_proxy_configuration_says_so(profile_runs):
    report = proxy_chapter.load_report(profile_runs, ["baseline", "cutmix"], [0, 1])
    assert report.proxy_names == []
    assert proxy_chapter.NO_PROXY in proxy_chapter.overview(report, "p", "t")


def test_chapter_reads_a_real_proxy_run(runs):
    report = proxy_chapter.load_report(runs["root"], ["straight"], [0])
    assert report.proxy_names == ["straight"] and report.baseline is None and report.best_mixing is None
    examples = proxy_chapter.read_examples(report, "straight")
    figure = proxy_chapter.plot_examples(examples, "straight", count=3)
    assert len(figure.axes) == 4 * min(3, len(examples["labels"]))
    costs = proxy_chapter.cost_table(report)["straight"]
    assert costs["proxy epochs"] == 2 and costs["proxies made per step"] > 0
    assert proxy_chapter.NO_REFERENCE in proxy_chapter.conclusion(report)
