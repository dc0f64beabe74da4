"""What every benchmark times with: wall-clock seconds of one call (CUDA work included), and glibc
told to keep freed memory (see `mixlib.bench.mixing`'s docstring for why)."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

import torch

CPU = torch.device("cpu")


def seconds(work: Callable[[], object], device: torch.device = CPU) -> float:
    """Seconds of one call of `work`, waiting for the device's queued work before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def steady_allocator() -> bool:
    """Stop glibc from handing freed memory back to the kernel; False where libc is not glibc.

    Large blocks are then served from the heap (mmap threshold at glibc's maximum, 32 MiB) and the heap
    is never trimmed, so a freed batch-sized tensor is reused without page faults. The setting lasts
    for the process.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**40))
