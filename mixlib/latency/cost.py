"""What a model costs at its input size: parameters, FLOPs, activation memory and weight sizes.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (the convolutions and matrix products; MACs
are half the FLOPs). The activation figures come from forward hooks on the leaf modules during one
batch-1 forward pass, because no library reports them; three are kept, each for a different question:

* `activation_elements`: every tensor a leaf module newly allocates in an eager PyTorch forward pass
  (in-place activations and views of the input do not count). This is the activation traffic of the
  unfused model.
* `fused_activation_elements`: only the outputs of the leaf modules that hold a weight matrix or kernel
  (convolutions and linear layers). An inference engine such as TensorRT fuses batch norm, the activation
  and the residual add into the producing convolution, so these are the tensors it materialises; the
  Orin roofline uses them (see `mixlib.latency.orin`).
* `peak_activation_elements`: the largest input + output of a single leaf module, i.e. what must be live
  at once to run that layer. It is a lower bound of the peak live activation memory: a residual branch
  keeps one more tensor of at most that size alive.

Weights are the parameters only: batch-norm statistics fold into the convolutions at export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mixlib.model_state import evaluation_mode

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class ModelCost:
    """Batch-1 cost of one model at one input shape (C, H, W); element counts, not bytes."""

    input_shape: tuple[int, int, int]
    params: int
    flops: int
    activation_elements: int
    fused_activation_elements: int
    peak_activation_elements: int

    @property
    def macs(self) -> int:
        return self.flops // 2

    def weight_bytes(self, precision: str) -> int:
        return self.params * bytes_per_element(precision)

    def activation_bytes(self, precision: str) -> int:
        return self.activation_elements * bytes_per_element(precision)

    def to_dict(self) -> dict:
        """Plain figures for JSON and tables: counts, GMACs/GFLOPs and sizes in MB (10^6 bytes)."""
        return {
            **asdict(self),
            "input_shape": list(self.input_shape),
            "params_m": self.params / 1e6,
            "gmacs": self.macs / 1e9,
            "gflops": self.flops / 1e9,
            "activation_mb_fp32": self.activation_bytes("fp32") / 1e6,
            "peak_activation_mb_fp32": self.peak_activation_elements * 4 / 1e6,
            **{f"weights_mb_{p}": self.weight_bytes(p) / 1e6 for p in BYTES_PER_ELEMENT},
        }


def bytes_per_element(precision: str) -> int:
    if precision not in BYTES_PER_ELEMENT:
        raise ValueError(f"unknown precision {precision!r}; allowed values: {', '.join(BYTES_PER_ELEMENT)}")
    return BYTES_PER_ELEMENT[precision]


def _square(input_size: int | tuple[int, int]) -> tuple[int, int]:
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"input_size must be a positive int or (height, width), got {input_size!r}")
    return size


def _is_new_tensor(output: torch.Tensor, inputs: tuple) -> bool:
    """False for an output that is one of the inputs (in-place op, Identity) or a view of one (Flatten)."""
    base = output._base if output._base is not None else output
    return not any(base is x or base is x._base for x in inputs if isinstance(x, torch.Tensor))


def _has_kernel(module: nn.Module) -> bool:
    return any(p.ndim >= 2 for p in module.parameters(recurse=False))


class _ActivationRecorder:
    """Forward hooks on every leaf module that add up the activation figures of `ModelCost`."""

    def __init__(self, model: nn.Module) -> None:
        self.total = self.fused = self.peak = 0
        leaves = [m for m in model.modules() if next(m.children(), None) is None]
        self.handles = [m.register_forward_hook(self._record) for m in leaves]

    def _record(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        in_elements = sum(x.numel() for x in inputs if isinstance(x, torch.Tensor))
        out_elements = output.numel() if _is_new_tensor(output, inputs) else 0
        self.total += out_elements
        self.fused += output.numel() if _has_kernel(module) else 0
        self.peak = max(self.peak, in_elements + out_elements)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def model_cost(model: nn.Module, input_size: int | tuple[int, int], in_chans: int = 3) -> ModelCost:
    """Count the batch-1 cost of `model` with one forward pass on the model's own device.

    A model built under `torch.device("meta")` is counted without allocating memory or computing,
    which keeps a ResNet-50 at 224x224 well under a second.
    """
    height, width = _square(input_size)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    example = torch.zeros(1, in_chans, height, width, device=device)
    recorder = _ActivationRecorder(model)
    try:
        with evaluation_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        recorder.remove()
    return ModelCost(
        input_shape=(in_chans, height, width),
        params=sum(p.numel() for p in model.parameters()),
        flops=int(counter.get_total_flops()),
        activation_elements=recorder.total,
        fused_activation_elements=recorder.fused,
        peak_activation_elements=recorder.peak,
    )
