"""Proxy Attention (seed thesis 001, reference code SubhadityaMukherjee/proxy_attention), leak-free.

During training, take training images the model currently gets wrong, compute a CAM for each, alter
the image where the CAM is hot, and train on these *proxy* images too. Select it with
`method: proxy` and put its parameters in `method_params`, e.g.
`{schedule: [2, "p", 2, "p", 1], mixing: cutmix, mixing_params: {alpha: 1.0}}`.

Proxy Attention is a training recipe, not a batch transform: per batch a run trains exactly as with its
inner mixing method (`mixing`), and between epochs the `ProxyAttention` callback adds the proxies. The
recipe that pairs the two lives with the other run recipes, in `mixlib.runs.recipes`.

Parameters (`method_params`), with their defaults and where each default comes from in the reference
code: `src/proxyattention/training.py` at commit 26e39d4 (functions named) and the `config` and
`search_space` dicts of `src/main.py` at commit 023a2c1:

| parameter | default | reference |
|---|---|---|
| `schedule` | `[5, "p", 9, "p", 9, "p", 9, "p", 4]` (40 epochs) | `proxy_steps` in `src/main.py` |
| `fraction` | 0.2 | `change_subset_attention`; count = ceil(fraction * misclassified) in `proxy_callback` |
| `selection` | `first` | `proxy_callback` keeps `input_wrong_full[:chosen_inds]`, the first found |
| `cam_method` | `gradcam++` | `gradient_method: gradcamplusplus` |
| `cam_class` | `predicted` | `cam(input_tensor=..., targets=None)` explains the predicted class |
| `threshold` | 0.85 | `proxy_threshold`; `torch.where(grads > threshold, ...)` in `proxy_one_batch` |
| `weight` | 0.1 | `proxy_image_weight` |
| `replacement` | `blended`: x' = (1 - weight * cam) * x | `pixel_replacement_method`; or a CAM statistic |
| `clear_every_step` | false | `clear_every_step: [False]` next to the schedule above |
| `cam_batch_size` | null (the run's batch size) | CAMs in chunks of `config["batch_size"]` |
| `mixing`, `mixing_params` | `none`, {} | (this project) the batch transform combined with the proxies |

Schedule forms (see `settings.SCHEDULE_FORMS`): the thesis list, whose integers are normal epochs and
each `"p"` one proxy epoch, must cover exactly the run's `epochs` and start with normal epochs;
`{every: k, count: n}` makes epochs k, 2k, ..., nk proxy epochs (k >= 2, n >= 1, k * n <= epochs), so
`{every: 3, count: 2}` in a 7-epoch run equals `[2, "p", 2, "p", 1]`.

What differs from the reference code, and why:

- Leak-free: the train/validation/test split is drawn once per run (the reference re-drew a random
  train/validation split at every schedule element, so validation images were trained on) and proxy
  images live in memory and in `<run_dir>/proxy/`, never in a dataset folder (the reference wrote them
  next to the training images, whence they entered later validation splits).
- A proxy epoch makes its proxies at its *start*, from the model trained so far, and trains on them in
  the same epoch. The reference made them at the end of a proxy epoch and loaded them only in later
  proxy epochs, so with `clear_every_step` true it never trained on a proxy at all.
- Misclassified images are found by predicting the un-augmented training images in eval mode, instead
  of reading predictions off the augmented training batches in train mode.
- `clear_every_step` false keeps all proxies made so far for every later *proxy* epoch; normal epochs
  train on the plain training set either way (the reference loads proxies only in proxy epochs).
- Proxies go through the same training transforms as the originals (the reference reloaded its saved
  proxy files through its training transform too). They are stored as uint8 pixels (rounded, lossless)
  where the reference saved truncated JPEGs.
- The learning-rate schedule stays the spine's: warm-up and cosine per optimiser step, sized for the
  plain training set. A proxy epoch has a few more steps (`proxy_extra_steps` in the history,
  `extra_optimizer_steps` in metrics.json), so it advances the schedule by that many steps and the run
  reaches the cosine's end (factor 0) that many steps before its last step; those last steps do not
  move the weights. With the default fraction this is a handful of steps out of thousands.
"""

from mixlib.proxy.callback import ProxyAttention
from mixlib.proxy.images import ProxyImages, alter_images, select_misclassified
from mixlib.proxy.rules import REPLACEMENTS, SELECTIONS
from mixlib.proxy.settings import ProxySettings, Schedule, parse_schedule

__all__ = [
    "REPLACEMENTS",
    "SELECTIONS",
    "ProxyAttention",
    "ProxyImages",
    "ProxySettings",
    "Schedule",
    "alter_images",
    "parse_schedule",
    "select_misclassified",
]
