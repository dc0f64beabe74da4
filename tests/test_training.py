import json
import shutil

import pytest
import torch
from torch import nn

from mixlib.mixing import create_batch_transform
from mixlib.models import create_model
from mixlib.runs import RunFolder, next_stage, train_run
from mixlib.runs.load import EVALUATED, EVALUATION_STAGE
from mixlib.training import CHECKPOINT, Callback, find_batch_size, training_step, warmup_cosine

from helpers import unmixed_step


class Interrupt(Exception):
    pass


class InterruptAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            raise Interrupt


def test_warmup_then_cosine():
    factor = warmup_cosine(total_steps=10, warmup_steps=2)
    assert [factor(0), factor(1)] == [0.5, 1.0]
    assert factor(2) == pytest.approx(1.0)
    assert factor(6) == pytest.approx(0.5)
    assert factor(10) == pytest.approx(0.0)


class NoTraining(Callback):
    def on_epoch_start(self, trainer, epoch):
        raise AssertionError("nothing may train")


class RecordRates(Callback):
    """The learning rate of every optimiser step, and where each epoch ends."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.epoch_ends: list[int] = []

    def on_epoch_start(self, trainer, epoch):
        if epoch == 1:
            trainer.optimizer.register_step_pre_hook(
                lambda optimizer, *_: self.rates.append(optimizer.param_groups[0]["lr"])
            )

    def on_epoch_end(self, trainer, epoch, record):
        self.epoch_ends.append(len(self.rates))


def test_schedule_is_sized_from_the_batches_drawn(tmp_path, tiny_config):
    # 60 training images in batches of 16: 3 full batches per epoch, the 12 left over are dropped
    config = tiny_config.replace(epochs=2, warmup_epochs=1)
    rates = RecordRates()
    result = train_run(config, tmp_path, callbacks=[rates], progress=False)
    assert rates.epoch_ends == [3, 6]
    # per step, the warm-up + cosine over the run's 6 steps, value for value
    schedule = warmup_cosine(total_steps=6, warmup_steps=3)
    assert rates.rates == [config.lr * schedule(step) for step in range(6)]
    assert rates.rates[2] == pytest.approx(config.lr)  # warm-up reaches the peak on its epoch's last step
    assert rates.rates[:3] == sorted(rates.rates[:3])
    assert rates.rates[3:] == sorted(rates.rates[3:], reverse=True)
    assert result.history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-12)  # the cosine ends with the run


def test_resume_after_interrupt_gives_the_same_weights(tmp_path, tiny_config):
    config = tiny_config.replace(epochs=3, warmup_epochs=1)
    straight = train_run(config, tmp_path / "straight", progress=False)
    with pytest.raises(Interrupt):
        train_run(config, tmp_path / "resumed", callbacks=[InterruptAtEpoch(3)], progress=False)
    resumed_folder = RunFolder(tmp_path / "resumed")
    checkpoint = torch.load(resumed_folder.checkpoint_files[0], weights_only=False)
    assert len(checkpoint["history"]) == 2 and not resumed_folder.is_finished()
    resumed = train_run(config, tmp_path / "resumed", progress=False)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert straight.metrics["accuracy"] == resumed.metrics["accuracy"]
    assert list(resumed.history["epoch"]) == [1, 2, 3]


def test_finished_run_is_reused_and_changed_config_retrains(tmp_path, tiny_config, finished_run):
    shutil.copytree(finished_run, tmp_path / "run")
    first = RunFolder(finished_run).read_metrics()
    again = train_run(tiny_config, tmp_path / "run", progress=False)
    assert again.reused and again.metrics == first
    changed = train_run(tiny_config.replace(lr=0.01), tmp_path / "run", progress=False)
    assert changed.trained


def test_an_evaluation_only_change_re_evaluates_the_checkpoint_without_training(
    tmp_path, tiny_config, finished_run
):
    """Changing the CAM method is an evaluation parameter: the checkpoint is scored again, never
    rewritten, and changing it back scores it exactly as before."""
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    checkpoint = (run_dir / CHECKPOINT).read_bytes()
    first = RunFolder(run_dir).read_metrics()
    other = tiny_config.replace(cam_method="gradcam++")
    assert next_stage(RunFolder(run_dir), other) == EVALUATION_STAGE
    changed = train_run(other, run_dir, callbacks=[NoTraining()], progress=False)
    assert changed.outcome == EVALUATED and changed.config == other
    assert changed.metrics["localisation"]["cam_method"] == "gradcam++"
    back = train_run(tiny_config, run_dir, callbacks=[NoTraining()], progress=False)
    assert back.outcome == EVALUATED and back.metrics == first
    assert (run_dir / CHECKPOINT).read_bytes() == checkpoint
    assert train_run(tiny_config, run_dir, progress=False).reused


def test_run_folder_contents(finished_run, tiny_config):
    folder = RunFolder(finished_run)
    files = (folder.config_file, folder.checkpoint_files[0], folder.history_file, folder.training_file)
    for path in (*files, folder.predictions_file, folder.metrics_file):
        assert path.is_file(), path
    assert any(folder.tensorboard.iterdir())
    assert folder.read_config() == tiny_config
    metrics = json.loads(folder.metrics_file.read_text())
    for key in (
        "accuracy",
        "macro_f1",
        "macro_precision",
        "macro_recall",
        "macro_fpr",
        "ece",
        "confusion_matrix",
        "corrupt_images_skipped",
        "epoch_seconds",
    ):
        assert key in metrics, key
    assert metrics["num_samples"] == 20  # 10 classes x 2 test images


def test_corrupt_images_are_counted_in_the_metrics(tmp_path, image_folder, tiny_config):
    root = tmp_path / "data"
    shutil.copytree(image_folder, root)
    (root / "test" / "class1" / "zz-broken.png").write_bytes(b"\x89PNG broken")
    config = tiny_config.replace(
        dataset="imagefolder", data_root=str(root), images_per_class=5, test_per_class=None, image_size=24
    )
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        result = train_run(config, tmp_path / "run", progress=False)
    assert result.metrics["corrupt_images_skipped"] == 1
    assert result.metrics["skipped_files"][0].endswith("zz-broken.png")
    assert result.metrics["num_samples"] == 12  # 3 classes x 4 test images; the broken 13th is skipped


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = create_model("resnet10t", num_classes=3, input_size=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    inputs, targets = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    transform = create_batch_transform("none")
    losses = [training_step(model, optimizer, inputs, targets, transform)["loss"] for _ in range(8)]
    assert losses[-1] < losses[0]


class ExtraTerm:
    name = "extra"

    def __call__(self, model, batch, features, logits):
        return features.pow(2).mean() * 0 + torch.tensor(0.25)


def test_extra_loss_terms_are_added_and_reported():
    model = create_model("resnet10t", num_classes=3, input_size=32)
    parts = unmixed_step(model, torch.optim.SGD(model.parameters(), lr=0.0), [ExtraTerm()])
    assert parts["extra_loss"] == pytest.approx(0.25)
    assert parts["loss"] == pytest.approx(parts["classification_loss"] + 0.25)


class FitsBelow(nn.Module):
    """Runs out of memory from a given batch size on, like a GPU would."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.linear = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        if len(x) >= self.limit:
            raise torch.OutOfMemoryError("simulated")
        return self.linear(x.flatten(1))


def test_batch_size_finder_doubles_then_halves_and_restores_weights():
    model = FitsBelow(limit=40)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    size = find_batch_size(model, (3, 4, 4), 2, torch.device("cpu"), dataset_size=1000, max_batch_size=1024)
    assert size == 32  # 2, 4, 8, 16, 32 fit; 64 fails -> 64 // 2
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_batch_size_finder_respects_caps():
    model = FitsBelow(limit=10**6)
    assert find_batch_size(model, (3, 4, 4), 2, torch.device("cpu"), dataset_size=100) == 64
    assert (
        find_batch_size(model, (3, 4, 4), 2, torch.device("cpu"), dataset_size=10**5, max_batch_size=128)
        == 128
    )
