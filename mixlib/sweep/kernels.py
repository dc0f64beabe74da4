"""Kernels a Dask worker keeps warm from one notebook to the next.

papermill starts a kernel for every notebook it executes, and the kernel's start and imports (torch,
timm, grad-cam with scikit-learn, matplotlib) took about 11 s of a core on this 2-core VM. The runner
executes one notebook per (configuration, seed) run and one per configuration's chapter, three times
as many notebooks as the serial runner it replaced, so the quick profile on Dask spent 331 s outside
training against the serial runner's 158 s and was 1.08x slower in all. With warm kernels the runs
spent 88-90 s outside training (the serial runner 191-197 s) and Dask took 0.78-0.82x the serial
runner's time (`python -m mixlib bench sweep --profile quick`, both orders).

A worker therefore hands each notebook a kernel that has executed one before: its namespace is reset
first (IPython's `reset` with a new session, so no variable of the last notebook is left and execution
counts start at 1 again), its open figures are closed and freed memory goes back to the GPU, while the
modules it imported stay loaded. torch's process-wide settings (deterministic-algorithm mode, cuDNN and
TF32 flags, thread count, default dtype, grad and autocast state) and the environment variables outlive
a namespace reset, so each kernel records them when it starts, before any notebook, and every reset
puts them back: the next notebook sees what a fresh kernel would (`tests/test_kernels.py`). Runs seed
every generator they draw from, so a run in a warm kernel ends with the metrics of a run in a fresh
one (`tests/test_report.py` compares a 2-worker sweep with the serial runner). A kernel whose notebook
failed, or that stopped answering, is shut down instead of kept: its state is unknown.

Neither papermill nor nbclient keeps a kernel between notebooks; both accept a kernel manager that is
already running one (nbclient then leaves it running), which is what is done here.
"""

from __future__ import annotations

import gc
import os
import queue
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from IPython import get_ipython
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

# what a warm kernel runs, silently, before its next notebook (reset removes the imported name too)
RESET = "from mixlib.sweep.kernels import forget_last_notebook\nforget_last_notebook()"
RESET_TIMEOUT = 20  # seconds a warm kernel has to answer before it is replaced (it resets in well under 1 s)
# what a kernel started for warm use runs before its first notebook, leaving no name in its namespace
RECORD_FRESH_STATE = (
    "--IPKernelApp.exec_lines=__import__('mixlib.sweep.kernels', fromlist=['_']).record_fresh_state()"
)


def torch_settings() -> dict[str, Any]:
    """torch's process-wide settings that a notebook can change and a namespace reset keeps."""
    import torch  # here, not at the top: the sweep's own process never needs torch

    return {name: get() for name, (get, _) in torch_setters(torch).items()}


def restore_torch_settings(settings: dict[str, Any]) -> None:
    import torch

    setters = torch_setters(torch)
    for name, value in settings.items():
        setters[name][1](value)


def torch_setters(torch) -> dict[str, tuple[Callable[[], Any], Callable[[Any], None]]]:
    """Each setting's getter and setter. Written out, as torch has no call that saves or restores them."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    setters = {
        "deterministic_algorithms": (
            lambda: (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
            ),
            lambda value: torch.use_deterministic_algorithms(value[0], warn_only=value[1]),
        ),
        "num_threads": (torch.get_num_threads, torch.set_num_threads),
        "default_dtype": (torch.get_default_dtype, torch.set_default_dtype),
        "grad_enabled": (torch.is_grad_enabled, torch.set_grad_enabled),
        "anomaly_detection": (torch.is_anomaly_enabled, torch.set_anomaly_enabled),
        "float32_matmul_precision": (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
        "autocast_cache": (torch.is_autocast_cache_enabled, torch.set_autocast_cache_enabled),
    }
    for flag in ("benchmark", "deterministic", "enabled", "allow_tf32"):
        setters[f"cudnn.{flag}"] = (
            lambda flag=flag: getattr(cudnn, flag),
            lambda value, flag=flag: setattr(cudnn, flag, value),
        )
    setters["cuda.matmul.allow_tf32"] = (
        lambda: matmul.allow_tf32,
        lambda value: setattr(matmul, "allow_tf32", value),
    )
    for device in ("cpu", "cuda"):
        setters[f"autocast.{device}"] = (
            lambda device=device: (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)),
            lambda value, device=device: (
                torch.set_autocast_enabled(device, value[0]),
                torch.set_autocast_dtype(device, value[1]),
            ),
        )
    return setters


_fresh_state: tuple[dict[str, str], dict[str, Any]] | None = None  # in a kernel: what it started with


def record_fresh_state() -> None:
    """Runs in a kernel as it starts (RECORD_FRESH_STATE): its environment and torch settings."""
    global _fresh_state
    _fresh_state = (dict(os.environ), torch_settings())


def restore_fresh_state() -> None:
    """Put back the environment and torch settings the kernel started with."""
    if _fresh_state is None:
        return  # not a kernel started for warm use
    environment, settings = _fresh_state
    os.environ.clear()
    os.environ.update(environment)
    restore_torch_settings(settings)


def forget_last_notebook() -> None:
    """Runs inside a warm kernel: drop the last notebook's variables, figures and GPU memory, and put
    back the process-wide state the kernel started with."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    get_ipython().reset(new_session=True)
    gc.collect()
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        sys.modules["torch"].cuda.empty_cache()
    restore_fresh_state()


class WarmKernel:
    """One kernel and the papermill executions it has served. nbclient starts it on the first notebook
    (in the working directory papermill sets) and, not owning the manager, leaves it running after."""

    def __init__(self) -> None:
        self.manager = RecordingKernelManager()
        self.usable = True  # False once a notebook failed in it

    def prepare(self) -> bool:
        """Make the kernel ready for a notebook; False if it is no longer usable (it must be replaced).
        A kernel not started yet needs nothing: nbclient starts it."""
        if not self.usable:
            return False
        if not self.manager.has_kernel:
            return True
        if not run_sync(self.manager.is_alive)():
            return False
        client = self.manager.blocking_client()
        client.start_channels()
        try:
            reply = client.execute_interactive(RESET, silent=True, store_history=False, timeout=RESET_TIMEOUT)
        except TimeoutError:
            return False
        finally:
            client.stop_channels()
        return reply["content"]["status"] == "ok"

    def finished_notebook(self, succeeded: bool) -> None:
        """Close the channels nbclient opened for the notebook just executed (it closes them only on a
        kernel it started itself); a kernel whose notebook failed is not used again."""
        self.usable = succeeded
        self.manager.stop_clients()

    def start_again(self) -> None:
        """After a failed start: a new manager, as the old one may still hold the dead process."""
        self.shut_down()
        self.manager = RecordingKernelManager()

    def shut_down(self) -> None:
        self.manager.stop_clients()
        if self.manager.has_kernel:
            run_sync(self.manager.shutdown_kernel)(now=True)


class RecordingKernelManager(AsyncKernelManager):
    """nbclient's own kernel manager class, remembering the clients it hands out so they can be closed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clients: list[AsyncKernelClient] = []

    def client(self, **kwargs) -> AsyncKernelClient:
        client = super().client(**kwargs)
        self.clients.append(client)
        return client

    def stop_clients(self) -> None:
        for client in self.clients:
            client.stop_channels()
        self.clients.clear()


# idle warm kernels of this process, by the working directory they were started in
_idle: dict[Path, queue.SimpleQueue[WarmKernel]] = {}


@contextmanager
def warm_kernel(cwd: Path) -> Iterator[WarmKernel]:
    """An idle warm kernel started in `cwd`, or a new one; it goes back to the idle ones if it is still
    usable after the block, and is shut down otherwise."""
    idle = _idle.setdefault(cwd, queue.SimpleQueue())
    kernel = take_idle(idle)
    try:
        yield kernel
    except BaseException:
        kernel.usable = False
        raise
    finally:
        if kernel.usable:
            idle.put(kernel)
        else:
            kernel.shut_down()


def take_idle(idle: queue.SimpleQueue[WarmKernel]) -> WarmKernel:
    """The first idle kernel that is still usable (the others are shut down), or a new one."""
    while True:
        try:
            kernel = idle.get_nowait()
        except queue.Empty:
            return WarmKernel()
        if kernel.prepare():
            return kernel
        kernel.shut_down()


def shut_down_idle_kernels() -> int:
    """Shut down every idle warm kernel of this process (a worker's, through `Client.run`); how many."""
    count = 0
    for idle in _idle.values():
        while not idle.empty():
            idle.get_nowait().shut_down()
            count += 1
    return count
