"""Run files on disk: written atomically, loaded without running code, set aside when damaged.

- Every write goes to a temporary file in the same folder, then `os.replace`s the target, so an
  interrupted run leaves either the old file or the new one, never half of one; a write that fails
  (a full disk included) removes its temporary file. Files get the mode the user's umask gives any new
  file, like the ones other libraries write into a run folder (TensorBoard's), so a group that shares
  the results can read all of them.
- PyTorch files are loaded with `weights_only=True`: a checkpoint holds tensors and plain Python data
  only, and a file that would need anything else (a pickled callable could run code on load) is
  refused with `RefusedFile`, never unpickled.
- A file that cannot be read (truncated, not JSON, not a PyTorch file) is `DamagedFile`; callers
  that can do without it `set_aside` it (renamed next to itself, with a warning) and start over.
- `exclusive_lock` gives one process at a time a file or folder: an OS lock (`flock`) that dies with
  its process, so a killed process leaves no stale lock; a process that has to wait says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import secrets
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

# NumPy scalars are plain data too (checkpoints written before histories were made plain hold them):
# rebuilding one from its dtype and bytes runs no code, so the weights-only loader may accept them.
NUMPY_SCALARS = [np._core.multiarray.scalar, np.dtype, *(getattr(np.dtypes, n) for n in np.dtypes.__all__)]


class RefusedFile(ValueError):
    """A PyTorch file holding more than tensors and plain data: loading it could run its code."""


class DamagedFile(ValueError):
    """A file that exists but cannot be read back (truncated, or not in the expected format)."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """`write(file)` into a new temporary file beside `path`, then rename it to `path`.

    The temporary file is created like any new file (mode 0666 less the umask; `tempfile.mkstemp`
    would make it 0600, unreadable to the group), and removed when anything fails before the rename.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def atomic_save_torch(state: Any, path: Path) -> None:
    atomic_write(path, lambda file: torch.save(state, file))


def load_torch(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with `RefusedFile` / `DamagedFile` errors."""
    try:
        with torch.serialization.safe_globals(NUMPY_SCALARS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            lines = str(error).splitlines()
            culprit = next((line for line in lines if "global" in line.lower()), lines[0]).strip()
            raise RefusedFile(
                f"refused to load {path}: it holds objects other than tensors and plain data, and "
                f"unpickling them could run code from the file ({culprit}). A mixlib checkpoint "
                "never needs this; only load files you made yourself."
            ) from None
        raise DamagedFile(f"{path} is damaged: {error}") from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DamagedFile(f"{path} is damaged: {str(error).strip().splitlines()[0]}") from error


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFile(f"{path} is damaged: {error}") from error


def set_aside(path: Path, error: Exception, consequence: str) -> Path:
    """Rename a damaged file to `<name>.damaged-<time>` next to itself and warn; returns the new path."""
    path = Path(path)
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, target)
    warnings.warn(f"{error}; set aside as {target.name}; {consequence}", stacklevel=3)
    return target


def read_or_set_aside(path: Path, read: Callable[[Path], Any], consequence: str) -> Any | None:
    """`read(path)`; None when the file does not exist or is damaged (then it is set aside).

    `read` is `load_torch` or `read_json`; a `RefusedFile` is not damage and propagates.
    """
    if not Path(path).is_file():
        return None
    try:
        return read(path)
    except DamagedFile as error:
        set_aside(path, error, consequence)
        return None


@contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[bool]:
    """Hold the OS lock on the file `path` (created if missing) while the block runs; yields whether
    another process held it first, in which case this one said so in one line on stderr and waited.

    The holder writes who it is into the file, for the waiting line; the lock itself is `flock`'s,
    released by the OS when the process ends however it ends, so the file is never a stale lock.
    """
    with open(path, "a+") as file:  # "a+": created if missing, never truncated by a waiting process
        waited = not try_lock(file)
        if waited:
            file.seek(0)
            holder = file.read().strip() or "another process"
            print(f"{what} is in use by {holder}; waiting for it to finish", file=sys.stderr, flush=True)
            fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        file.truncate()
        file.write(lock_holder())
        file.flush()
        try:
            yield waited
        finally:
            file.seek(0)
            file.truncate()


def try_lock(file: Any) -> bool:
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_holder() -> str:
    """This process as a waiting one reads it: a report's Dask worker is the child of the report."""
    started = time.strftime("%H:%M:%S")
    return f"process {os.getpid()} (child of {os.getppid()}) on {socket.gethostname()} since {started}"
