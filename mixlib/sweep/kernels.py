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
modules it imported stay loaded. Runs seed every generator they draw from and set their own
deterministic flags, so a run in a warm kernel ends with the metrics of a run in a fresh one
(`tests/test_report.py` compares a 2-worker sweep with the serial runner). A kernel whose notebook
failed, or that stopped answering, is shut down instead of kept: its state is unknown.

Neither papermill nor nbclient keeps a kernel between notebooks; both accept a kernel manager that is
already running one (nbclient then leaves it running), which is what is done here.
"""

from __future__ import annotations

import gc
import queue
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from IPython import get_ipython
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

# what a warm kernel runs, silently, before its next notebook (reset removes the imported name too)
RESET = "from mixlib.sweep.kernels import forget_last_notebook\nforget_last_notebook()"
RESET_TIMEOUT = 20  # seconds a warm kernel has to answer before it is replaced (it resets in well under 1 s)


def forget_last_notebook() -> None:
    """Runs inside a warm kernel: drop the last notebook's variables, figures and GPU memory."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    get_ipython().reset(new_session=True)
    gc.collect()
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        sys.modules["torch"].cuda.empty_cache()


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
