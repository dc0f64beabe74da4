"""Where a report's runs execute: a Dask cluster on this machine sized to it, or a running scheduler.

Every run is a papermill execution whose kernel (a child process of the Dask worker) does the work;
the worker's own thread only waits for it. So a local worker executes one notebook at a time, the
machine's cores are shared out between workers through the kernels' torch thread count
(`THREAD_VARIABLES`, which a kernel inherits from its worker), and on a GPU machine
each worker sees only its own GPU through `CUDA_VISIBLE_DEVICES`, as dask-cuda's `LocalCUDACluster`
pins its workers. On a CPU the default is one one-thread worker per core: a small model's training
step gains less than 2x from a second thread, and a notebook's figures use one core, so two
one-thread runs side by side keep both cores busier than one two-thread run (`python -m mixlib bench
sweep` measures it against the serial runner). Each worker keeps its kernel warm between notebooks
(`mixlib.sweep.kernels`).

On a running cluster (`--scheduler`) the cluster's workers are used as they are; `--runs-per-gpu N`
then asks each task for 1/N of a worker resource named `GPU` (workers started with `--resources GPU=1`,
one per GPU), so that N runs share a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dask
from distributed import Client, LocalCluster

# Runs that share one GPU by default. Not measured yet (no GPU machine was available when this was
# written): a ResNet-10 at 64 px leaves most of a large GPU idle, so several runs share one.
DEFAULT_RUNS_PER_GPU = 4
GPU_RESOURCE = "GPU"
# what a kernel's torch (OpenMP, MKL) and numpy (OpenBLAS) read their thread counts from
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536 (`distributed.nanny.pre-spawn-environ`)
# so that a worker hands freed memory back to the system. A kernel inherited it, and with it glibc maps
# and unmaps every large tensor: two quick-profile runs side by side trained in 34-36 s instead of 26-28 s
# (`train_run` at one thread each, on this 2-core VM). The worker read it when it started, so removing it
# from the worker's environment changes only the kernels it starts.
DASK_MALLOC_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


@dataclass(frozen=True)
class WorkerPlan:
    """What one local worker's runs get: torch threads and, on a GPU machine, the GPU they see."""

    threads: int
    gpu: int | None = None

    def environment(self) -> dict[str, str]:
        variables = dict.fromkeys(THREAD_VARIABLES, str(self.threads))
        if self.gpu is not None:
            variables["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        return variables


def plan_workers(
    cores: int, gpus: int, workers: int | None = None, runs_per_gpu: int | None = None
) -> list[WorkerPlan]:
    """One plan per local worker: `workers` of them (default one per core on a CPU, `runs_per_gpu` per GPU).

    Worker i is pinned to GPU i mod `gpus`; the cores are split evenly, at least one thread each.
    """
    if workers is not None and runs_per_gpu is not None:
        raise ValueError("give --workers or --runs-per-gpu, not both (--workers sets the total)")
    if runs_per_gpu is not None and gpus == 0:
        raise ValueError("--runs-per-gpu needs a GPU and this machine has none; use --workers")
    if workers is None:
        workers = gpus * (runs_per_gpu or DEFAULT_RUNS_PER_GPU) if gpus else cores
    threads = max(1, cores // workers)
    return [WorkerPlan(threads, index % gpus if gpus else None) for index in range(workers)]


class PinnedLocalCluster(LocalCluster):
    """A `LocalCluster` of one-thread worker processes, each with the environment of its plan."""

    def __init__(self, plans: Sequence[WorkerPlan], **kwargs) -> None:
        self.plans = list(plans)
        super().__init__(n_workers=0, threads_per_worker=1, processes=True, **kwargs)
        self.scale(len(self.plans))

    def new_worker_spec(self) -> dict:
        # the one place a SpecCluster names and configures each new worker (dask-cuda overrides it too)
        ((name, spec),) = super().new_worker_spec().items()
        environment = self.plans[name % len(self.plans)].environment()
        return {name: {**spec, "options": {**spec["options"], "env": environment}}}


@contextmanager
def every_core_for_kernels() -> Iterator[None]:
    """Kernels started inside get this machine's every core (their worker's thread count is lifted)."""
    with environment_kept():
        os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(len(os.sched_getaffinity(0)))))
        yield


def kernels_use_the_default_allocator() -> None:
    """Kernels started from this worker from now on get glibc's own malloc settings, not Dask's."""
    os.environ.pop(DASK_MALLOC_VARIABLE, None)


def machine_gpus() -> int:
    import torch

    return torch.cuda.device_count()


@contextmanager
def dask_client(
    scheduler: str | None = None, workers: int | None = None, runs_per_gpu: int | None = None
) -> Iterator[Client]:
    """A client of the scheduler at `scheduler`, or of a local cluster planned by `plan_workers`."""
    if scheduler is not None:
        if workers is not None:
            raise ValueError("--workers sizes the local cluster; with --scheduler the cluster's workers run")
        with Client(scheduler) as client:
            yield client
        return
    with environment_kept():
        yield from local_cluster_client(workers, runs_per_gpu)


@contextmanager
def environment_kept() -> Iterator[None]:
    """Starting a `LocalCluster` leaves `OMP_NUM_THREADS=1` (Dask's pre-spawn environment) in this
    process's own environment, so every kernel started here afterwards ran on one thread; the
    environment is put back as it was."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_cluster_client(workers: int | None, runs_per_gpu: int | None) -> Iterator[Client]:
    plans = plan_workers(len(os.sched_getaffinity(0)), machine_gpus(), workers, runs_per_gpu)
    # The work happens in each task's kernel process, so the worker's statistical profiler (a stack
    # sample every 10 ms) only profiles a thread that waits; off, an idle worker's CPU use measured
    # here fell from about 4.4 % to 2.5 % of a core.
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        PinnedLocalCluster(plans) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(len(plans))
        yield client


def task_resources(client: Client, runs_per_gpu: int | None) -> dict[str, float] | None:
    """Worker resources each task asks for on a running cluster: 1/N of a `GPU` when N runs share one."""
    if runs_per_gpu is None:
        return None
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if not any(GPU_RESOURCE in worker.get("resources", {}) for worker in workers):
        raise ValueError(
            f"--runs-per-gpu on a running cluster needs workers started with --resources {GPU_RESOURCE}=1; "
            "none of this scheduler's workers has that resource"
        )
    return {GPU_RESOURCE: 1 / runs_per_gpu}
