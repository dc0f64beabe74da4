"""The proxy step as a training callback: between epochs, add proxy images to the training set.

At the start of every proxy epoch of the schedule:

1. predict the *training* images, un-augmented (the evaluation transform), with the model as trained
   so far, in eval mode;
2. choose a fraction of the misclassified ones (`select_misclassified`);
3. compute their CAMs in batches (`mixlib.cams.compute_cams`), for the predicted or the true class;
4. alter them where the CAM is above the threshold (`alter_images`, one vectorised pass);
5. write them to the run's cache (`<run_dir>/proxy/epochNNN.pt`) and train this epoch on the training
   set plus the proxies (plus, unless `clear_every_step`, the proxies of earlier proxy epochs).

Normal epochs train on the plain training set, as the reference does (it loads proxy images only in
proxy epochs). The validation and test sets are never touched: the callback only ever replaces
`trainer.train_set` (by the stored training tensors plus the proxies, `with_extra`), and proxies live
in memory and in the run folder, never in a dataset folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from mixlib.cams import compute_cams
from mixlib.data import AnnotatedImageDataset, TrainingImages, denormalise
from mixlib.proxy.images import ProxyImages, alter_images, proxy_tensors, select_misclassified, to_uint8
from mixlib.proxy.settings import ProxySettings
from mixlib.run_data import build_eval_dataset
from mixlib.training import Callback, Trainer, batches_per_epoch, epoch_seed, predict

CACHE = "proxy"
EXAMPLES = "examples.pt"
EXAMPLE_COUNT = 8  # originals, CAMs and proxies of the first proxy step kept for the report
SELECTION_SEED_OFFSET = 2  # epoch_seed + 0: data transforms, + 1: mixing; + 2: proxy selection
RECORD_FIELDS = (
    "proxy_step",
    "proxy_misclassified",
    "proxy_made",
    "proxy_used",
    "proxy_extra_steps",
    "proxy_seconds",
)


class ProxyAttention(Callback):
    """Proxy Attention for one run (a fresh instance per run: it remembers that run's training set)."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        self.proxy_epochs = frozenset(settings.parsed_schedule.proxy_epochs)
        self.base: TrainingImages | None = None
        self.kept: list[ProxyImages] = []
        self.training_images: AnnotatedImageDataset | None = None
        self.record: dict = {}

    # -- the two hooks

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.base is None:
            self.base = trainer.train_set
            self._restore(trainer, epoch)
        trainer.train_set = self.base
        self.record = dict.fromkeys(RECORD_FIELDS, 0)
        if epoch not in self.proxy_epochs:
            return
        start = time.perf_counter()
        proxies, misclassified = self.make_proxies(trainer, epoch)
        proxies.save(self.cache(trainer) / f"epoch{epoch:03d}.pt")
        pool = [proxies] if self.settings.clear_every_step else [*self.kept, proxies]
        if not self.settings.clear_every_step:
            self.kept.append(proxies)
        used = sum(len(step) for step in pool)
        if used:
            trainer.train_set = self.base.with_extra(proxy_tensors(pool))
        self.record.update(
            proxy_step=1,
            proxy_misclassified=misclassified,
            proxy_made=len(proxies),
            proxy_used=used,
            proxy_extra_steps=batches_per_epoch(len(self.base) + used, trainer.batch_size)
            - batches_per_epoch(len(self.base), trainer.batch_size),
            proxy_seconds=time.perf_counter() - start,
        )

    def on_epoch_end(self, trainer: Trainer, epoch: int, record: dict) -> None:
        record.update(self.record)
        trainer.train_set = self.base  # the next normal epoch sees the plain training set again

    def run_metrics(self, trainer: Trainer) -> dict:
        """The `proxy` entry of metrics.json, from the history (so it covers epochs before a resume)."""
        return {"proxy": proxy_summary(trainer.history, self.settings)}

    # -- one proxy step

    def make_proxies(self, trainer: Trainer, epoch: int) -> tuple[ProxyImages, int]:
        """This epoch's proxies and the number of misclassified training images they were chosen from."""
        images = self._training_images(trainer)
        logits, labels = predict(trainer.model, trainer.eval_loader(images), trainer.device)
        generator = torch.Generator().manual_seed(
            epoch_seed(trainer.config.seed, epoch) + SELECTION_SEED_OFFSET
        )
        chosen = select_misclassified(logits, labels, self.settings, generator)
        misclassified = int((logits.argmax(1) != labels).sum())
        samples = [images[int(i)] for i in chosen]
        if not samples:
            return ProxyImages(
                torch.zeros(0, 3, 1, 1, dtype=torch.uint8), labels[:0], chosen, epoch
            ), misclassified
        inputs = torch.stack([s["image"] for s in samples])
        targets = logits.argmax(1)[chosen] if self.settings.cam_class == "predicted" else labels[chosen]
        cams = torch.from_numpy(
            compute_cams(
                trainer.model,
                inputs.to(trainer.device),
                targets,
                method=self.settings.cam_method,
                batch_size=self.settings.cam_batch_size or trainer.batch_size,
            )
        )
        originals = to_uint8(denormalise(inputs))
        proxies = ProxyImages(
            alter_images(originals, cams, self.settings),
            labels[chosen],
            chosen,
            epoch,
            torch.stack([s["box"] for s in samples]) if "box" in samples[0] else None,
            torch.stack([s["mask"] for s in samples]) if "mask" in samples[0] else None,
        )
        self._save_examples(trainer, originals, cams, proxies, logits.argmax(1)[chosen])
        return proxies, misclassified

    def _training_images(self, trainer: Trainer) -> AnnotatedImageDataset:
        """The training records under the evaluation transform, built once; index i is training image i."""
        if self.training_images is None:
            self.training_images = build_eval_dataset(trainer.config, trainer.splits.train)
            if self.training_images.records != self.base.records:
                raise RuntimeError("the un-augmented training images do not line up with the training set")
        return self.training_images

    def _save_examples(self, trainer, originals, cams, proxies: ProxyImages, predicted) -> None:
        path = self.cache(trainer) / EXAMPLES
        if path.exists() or not len(proxies):
            return  # only the first proxy step that made any proxy
        shown = slice(0, EXAMPLE_COUNT)
        torch.save(
            {
                "epoch": proxies.epoch,
                "originals": originals[shown],
                "cams": cams[shown].float(),
                "proxies": proxies.images[shown],
                "labels": proxies.labels[shown],
                "predicted": predicted[shown],
                "sources": proxies.sources[shown],
                "class_names": list(trainer.splits.class_names),
                "threshold": self.settings.threshold,
            },
            path,
        )

    # -- the run's cache: what an interrupted run needs to resume exactly

    def cache(self, trainer: Trainer) -> Path:
        folder = Path(trainer.run_dir) / CACHE
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _restore(self, trainer: Trainer, epoch: int) -> None:
        """Fresh run: empty the cache. Resumed run: reload the proxies kept from earlier proxy epochs."""
        if epoch == 1:
            shutil.rmtree(Path(trainer.run_dir) / CACHE, ignore_errors=True)
            return
        if self.settings.clear_every_step:
            return
        for earlier in sorted(e for e in self.proxy_epochs if e < epoch):
            path = self.cache(trainer) / f"epoch{earlier:03d}.pt"
            if not path.is_file():
                raise FileNotFoundError(
                    f"cannot resume {trainer.run_dir} at epoch {epoch}: the proxy images of epoch {earlier} "
                    f"({path}) are missing; delete {trainer.run_dir / 'checkpoint.pt'} to train from scratch"
                )
            self.kept.append(ProxyImages.load(path))


def proxy_summary(history: list[dict], settings: ProxySettings) -> dict:
    """Totals of the per-epoch proxy fields: what the proxy steps made, used and cost."""
    steps = [r for r in history if r.get("proxy_step")]
    proxy_seconds = sum(r["proxy_seconds"] for r in steps)
    training_seconds = sum(r["epoch_seconds"] for r in history)
    return {
        "proxy_epochs": [int(r["epoch"]) for r in steps],
        "steps": len(steps),
        "misclassified": int(sum(r["proxy_misclassified"] for r in steps)),
        "made": int(sum(r["proxy_made"] for r in steps)),
        "used": int(sum(r["proxy_used"] for r in steps)),
        "extra_optimizer_steps": int(sum(r["proxy_extra_steps"] for r in steps)),
        "seconds": proxy_seconds,
        "seconds_per_step": proxy_seconds / len(steps) if steps else 0.0,
        "training_seconds": training_seconds,
        "share_of_time": proxy_seconds / (proxy_seconds + training_seconds) if history else 0.0,
        "clear_every_step": settings.clear_every_step,
    }
