"""The training engine: one loop for every method, with a batch transform, extra loss terms and
callbacks plugged in; its steps, its checkpoints and the set-up it needs (device, seeds, optimiser,
schedule, batch size). Which transform, terms and callbacks a run gets, and what a run folder holds
besides the checkpoints, is composed above it, in `mixlib.runs`.

The training split lives as uint8 tensors on the training device (or streams in uint8 batches when
it exceeds the memory budget, `mixlib.data.stored`); every epoch draws batches by a seeded index
permutation and augments each whole batch on the device (`mixlib.data.augment`). The step runs in
channels-last memory format, under bf16/fp16 autocast on CUDA (bf16 on the CPU as an option), with an
optionally compiled forward pass; evaluation runs in large batches under `inference_mode`.

Reproducibility rests on reseeding at every epoch boundary (the data generator for the permutation and
the augmentation draws, the mixing generator, and the global torch RNG for anything else): an epoch's
randomness depends only on (seed, epoch), so a run resumed from the checkpoint of epoch k replays
epochs k+1... exactly as an uninterrupted run.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from mixlib.config import RunConfig
from mixlib.data import AnnotatedImageDataset, BatchAugment, DataSplits, ImageTensors, TrainingImages
from mixlib.files import atomic_save_torch, atomic_write_text, load_torch, read_or_set_aside
from mixlib.losses import LossTerm, MixedBatch, mixed_cross_entropy
from mixlib.mixing import BatchTransform
from mixlib.model_state import evaluation_mode

# the engine's files in a run folder (the whole folder's contract: `mixlib.runs.folder`)
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.previous.pt"  # the epoch before; used when checkpoint.pt is damaged
HISTORY = "history.csv"
TENSORBOARD = "tensorboard"
CPU_MAX_BATCH_SIZE = 256  # on a CPU memory never runs out first; the finder needs a ceiling
EVAL_BATCH_SIZE = 256


# --------------------------------------------------------------------------- set-up


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def set_deterministic(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.benchmark = not enabled


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may draw from the legacy global RNG
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=True,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def batches_per_epoch(images: int, batch_size: int) -> int:
    """Optimiser steps of one epoch: a last partial batch is dropped unless it is the only one."""
    return images // batch_size if images > batch_size else 1


def autocast_dtype(config: RunConfig, device: torch.device) -> torch.dtype | None:
    """The step's autocast type: `amp_dtype` on CUDA (float16 without bf16 support); bf16 on CPU if asked."""
    if device.type == "cuda" and config.amp:
        wanted = getattr(torch, config.amp_dtype)
        return wanted if wanted != torch.bfloat16 or torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and config.cpu_amp:
        return torch.bfloat16
    return None


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up from 0, then cosine decay to 0 (per optimiser step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def epoch_rate_factor(epochs: int, warmup_epochs: int, epoch: int, step: int, steps: int) -> float:
    """The learning-rate factor of step `step` (0-based; `steps` itself is the epoch's end) of epoch
    `epoch` (1-based), an epoch that draws `steps` batches.

    Each epoch owns 1/`epochs` of the warm-up + cosine schedule, shared by the batches it actually
    draws, so an epoch with extra batches (a Proxy Attention epoch trains on the training set plus its
    proxies, a count known only when that epoch starts) spreads its share over all of them: every step
    of the run has a rate above 0 and the schedule reaches 0 exactly after the run's last step. Where
    every epoch draws the same batches this is `warmup_cosine` over the run's steps, value for value
    (the same integers go in).
    """
    return warmup_cosine(epochs * steps, warmup_epochs * steps)((epoch - 1) * steps + step)


def find_batch_size(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    num_classes: int,
    device: torch.device,
    dataset_size: int,
    max_batch_size: int | None = None,
) -> int:
    """The seed thesis's finder: double from 2 while a training step fits, halve on the first failure.

    Steps run on random data with a throwaway optimiser; the model's weights are restored afterwards.
    `max_batch_size` defaults to 256 on CPU, where the loop would otherwise only stop at the dataset size.
    """
    if max_batch_size is None and device.type == "cpu":
        max_batch_size = CPU_MAX_BATCH_SIZE
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    batch_size = 2
    try:
        while True:
            if max_batch_size is not None and batch_size >= max_batch_size:
                return max_batch_size
            if batch_size >= dataset_size:
                return max(1, batch_size // 2)
            try:
                inputs = torch.randn(batch_size, *input_shape, device=device)
                targets = torch.randn(batch_size, num_classes, device=device)
                loss = nn.functional.mse_loss(model(inputs), targets)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            except torch.OutOfMemoryError:
                optimizer.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                return max(1, batch_size // 2)
            batch_size *= 2
    finally:
        model.load_state_dict(state)


# --------------------------------------------------------------------------- steps


def forward_features_and_logits(model: nn.Module, inputs: Tensor) -> tuple[Tensor, Tensor]:
    """timm models split into `forward_features` and `forward_head`; CAM losses need both outputs."""
    features = model.forward_features(inputs)
    return features, model.forward_head(features)


def training_step(*args: object, **kwargs: object) -> dict[str, float]:
    """Transform the batch, forward once, add the extra terms, step. Returns loss parts and accuracy.

    Takes `step_tensors`' arguments and returns its parts as Python floats (one sync per call).
    """
    return {name: float(value) for name, value in step_tensors(*args, **kwargs).items()}


def step_tensors(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: Tensor,
    targets: Tensor,
    batch_transform: BatchTransform,
    loss_terms: Sequence[LossTerm] = (),
    label_smoothing: float = 0.0,
    generator: torch.Generator | None = None,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    forward: Callable[[nn.Module, Tensor], tuple[Tensor, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """One training step; the parts come back as detached 0-d tensors, so the loop sums them on the
    device and syncs once per epoch.

    Autocast is on when `amp_dtype` is given; the scaler (float16) scales the loss when enabled.
    `forward` replaces `forward_features_and_logits`, e.g. by its compiled version.
    """
    batch = batch_transform(inputs, targets, generator=generator, model=model)
    forward = forward or forward_features_and_logits
    with torch.autocast(inputs.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        features, logits = forward(model, batch.inputs)
        classification = mixed_cross_entropy(logits, batch, label_smoothing)
        extras = {term.name: term(model, batch, features, logits) for term in loss_terms}
        loss = classification + sum(extras.values())
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    parts = {"loss": loss.detach(), "classification_loss": classification.detach()}
    parts.update({f"{name}_loss": value.detach() for name, value in extras.items()})
    parts["accuracy"] = mixed_accuracy(logits.detach(), batch)
    return parts


def mixed_accuracy(logits: Tensor, batch: MixedBatch) -> Tensor:
    """Accuracy against the mixed labels, each label counted with its weight (a 0-d tensor)."""
    predicted = logits.argmax(dim=1)
    lam = batch.lam.to(logits.device)
    hits = lam * (predicted == batch.targets_a) + (1 - lam) * (predicted == batch.targets_b)
    return hits.mean()


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[Tensor, Tensor]:
    """Logits and labels of a whole loader, in eval mode (every module's mode is restored)."""
    logits, labels = [], []
    with evaluation_mode(model):
        for sample in loader:
            logits.append(model(sample["image"].to(device, non_blocking=True)).float().cpu())
            labels.append(sample["label"])
    return torch.cat(logits), torch.cat(labels)


def eval_loader(
    dataset: AnnotatedImageDataset, batch_size: int, config: RunConfig, device: torch.device
) -> DataLoader:
    """Batches of an evaluation set: at least `EVAL_BATCH_SIZE` images, as nothing is kept for backward."""
    return DataLoader(
        dataset,
        batch_size=max(batch_size, EVAL_BATCH_SIZE),
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )


# --------------------------------------------------------------------------- the loop


class Callback:
    """Hooks for components that act between epochs (e.g. Proxy Attention adding training images).

    Subclasses override the hooks they need; the defaults do nothing.
    """

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch `epoch` (1-based) trains; it may swap `trainer.train_set` (e.g. for `with_extra`)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict) -> None:
        """After the epoch is validated; keys added to `record` go into the history."""

    def run_metrics(self, trainer: Trainer) -> dict:
        """Entries merged into the run's metrics.json once training is done (e.g. `{"proxy": ...}`)."""
        return {}


@dataclass
class Trainer:
    """State of one run; `fit` trains from wherever the checkpoint left off."""

    config: RunConfig
    run_dir: Path
    model: nn.Module
    splits: DataSplits
    train_set: TrainingImages
    val_set: AnnotatedImageDataset
    device: torch.device
    batch_size: int
    fingerprint: str  # the run's training key (`mixlib.runs.keys`): a checkpoint resumes only under it
    batch_transform: BatchTransform
    loss_terms: Sequence[LossTerm] = ()
    callbacks: Sequence[Callback] = ()
    progress: bool = True
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, self.config)
        self.amp_dtype = autocast_dtype(self.config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.augment = BatchAugment(
            self.config.image_size, self.config.crop_scale_min, self.config.color_jitter
        )
        self.forward = forward_features_and_logits
        if self.config.torch_compile:
            self.forward = torch.compile(forward_features_and_logits)

    def eval_loader(self, dataset: AnnotatedImageDataset) -> DataLoader:
        return eval_loader(dataset, self.batch_size, self.config, self.device)

    def fit(self) -> list[dict]:
        self.resume()
        if len(self.history) == self.config.epochs:  # resumed from the last epoch: nothing to log
            return self.history
        writer = SummaryWriter(str(self.run_dir / TENSORBOARD), purge_step=len(self.history) + 1)
        epochs = tqdm(
            range(len(self.history) + 1, self.config.epochs + 1),
            desc=f"{self.config.method} seed {self.config.seed}",
            initial=len(self.history),
            total=self.config.epochs,
            disable=not self.progress,
        )
        try:
            for epoch in epochs:
                record = self.run_epoch(epoch)
                self.history.append(record)
                self.save_checkpoint()
                for name, value in record.items():
                    if name != "epoch":
                        writer.add_scalar(name, value, epoch)
                epochs.set_postfix(
                    loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_accuracy']:.3f}"
                )
        finally:
            writer.close()
        return self.history

    def run_epoch(self, epoch: int) -> dict:
        for callback in self.callbacks:
            callback.on_epoch_start(self, epoch)
        seed = epoch_seed(self.config.seed, epoch)
        torch.manual_seed(seed)  # anything still drawing from the global RNG (e.g. dropout)
        data = torch.Generator().manual_seed(seed)  # the permutation, then each batch's augmentation
        mixing = torch.Generator().manual_seed(seed + 1)
        self.model.train()
        start = time.perf_counter()
        sums, batches = self.train_epoch(epoch, data, mixing)
        parts = {f"train_{name}": float(value) / batches for name, value in sums.items()}  # syncs once
        seconds = time.perf_counter() - start
        val_logits, val_labels = predict(self.model, self.eval_loader(self.val_set), self.device)
        record = {
            "epoch": epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            **parts,
            "val_loss": float(nn.functional.cross_entropy(val_logits, val_labels)),
            "val_accuracy": float((val_logits.argmax(1) == val_labels).float().mean()),
            "epoch_seconds": seconds,
            "images_per_second": batches * self.batch_size / seconds,
        }
        for callback in self.callbacks:
            callback.on_epoch_end(self, epoch, record)
        return record

    def train_epoch(
        self, epoch: int, data: torch.Generator, mixing: torch.Generator
    ) -> tuple[dict[str, Tensor], int]:
        """Epoch `epoch` (1-based) over the training set as it is now (a callback may have grown it):
        loss parts summed on the device, and the number of steps. Leaves the rate the next epoch starts
        with in the optimiser (0 after the last epoch), which the history records."""
        steps = batches_per_epoch(len(self.train_set), self.batch_size)
        order = torch.randperm(len(self.train_set), generator=data)[: steps * self.batch_size]
        sums: dict[str, Tensor] = {}
        for step, batch in enumerate(self.train_set.batches(order, self.batch_size, self.device)):
            self.set_rate(epoch, step, steps)
            parts = self.train_step(batch, data, mixing)
            for name, value in parts.items():
                sums[name] = sums[name] + value if name in sums else value
        self.set_rate(epoch, steps, steps)
        return sums, steps

    def set_rate(self, epoch: int, step: int, steps: int) -> None:
        """The rate of step `step` of `steps` in epoch `epoch`, from the run's epoch count alone, so a
        resumed run needs no scheduler state (`epoch_rate_factor`)."""
        factor = epoch_rate_factor(self.config.epochs, self.config.warmup_epochs, epoch, step, steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor

    def train_step(
        self, batch: ImageTensors, data: torch.Generator, mixing: torch.Generator
    ) -> dict[str, Tensor]:
        """One optimiser step on a uint8 batch of the training set: the batch augmentation (drawn from
        `data`), the recipe's batch transform (drawn from `mixing`), forward, loss terms, backward and
        update; the loss parts as 0-d tensors on the device. `mixlib.bench.training_cost` times this."""
        inputs = self.augment(batch.images, data).images.contiguous(memory_format=torch.channels_last)
        return step_tensors(
            self.model,
            self.optimizer,
            inputs,
            batch.labels,
            self.batch_transform,
            self.loss_terms,
            self.config.label_smoothing,
            mixing,
            self.scaler,
            self.amp_dtype,
            self.forward,
        )

    # checkpoints: written atomically after every epoch, read back only if config and code match
    def save_checkpoint(self) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": plain_data(self.history),
            "batch_size": self.batch_size,
        }
        if (self.run_dir / CHECKPOINT).is_file():
            os.replace(self.run_dir / CHECKPOINT, self.run_dir / PREVIOUS_CHECKPOINT)
        atomic_save_torch(state, self.run_dir / CHECKPOINT)
        self.write_history()

    def write_history(self) -> None:
        atomic_write_text(self.run_dir / HISTORY, pd.DataFrame(self.history).to_csv(index=False))

    def resume(self) -> None:
        """Continue from the newest whole checkpoint; history.csv is rewritten from it, as the file may
        be damaged, missing, or a row ahead when the checkpoint it followed was set aside."""
        state = read_checkpoint(self.run_dir, self.fingerprint)
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.write_history()


def read_checkpoint(run_dir: Path, expected_fingerprint: str) -> dict | None:
    """The newest readable checkpoint if it was made with this config and code, else None.

    Loaded weights-only (a file with pickled code is refused, `mixlib.files.RefusedFile`); a damaged
    checkpoint is set aside and the one of the epoch before it is tried, then a fresh start.
    """
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        state = read_or_set_aside(run_dir / name, load_torch, "the run resumes from an earlier state")
        if isinstance(state, dict):
            return state if state.get("fingerprint") == expected_fingerprint else None
    return None


def plain_data(history: list[dict]) -> list[dict]:
    """History records as plain Python numbers (NumPy scalars would not load weights-only)."""
    return [{k: v.item() if isinstance(v, np.generic) else v for k, v in r.items()} for r in history]
