"""Run files on disk: written atomically, loaded without running code, set aside when damaged.

- Every write goes to a temporary file in the same folder, then `os.replace`s the target, so an
  interrupted run leaves either the old file or the new one, never half of one.
- PyTorch files are loaded with `weights_only=True`: a checkpoint holds tensors and plain Python data
  only, and a file that would need anything else (a pickled callable could run code on load) is
  refused with `RefusedFile`, never unpickled.
- A file that cannot be read (truncated, not JSON, not a PyTorch file) is `DamagedFile`; callers
  that can do without it `set_aside` it (renamed next to itself, with a warning) and start over.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# NumPy scalars are plain data too (checkpoints written before histories were made plain hold them):
# rebuilding one from its dtype and bytes runs no code, so the weights-only loader may accept them.
NUMPY_SCALARS = [np._core.multiarray.scalar, np.dtype, *(getattr(np.dtypes, n) for n in np.dtypes.__all__)]


class RefusedFile(ValueError):
    """A PyTorch file holding more than tensors and plain data: loading it could run its code."""


class DamagedFile(ValueError):
    """A file that exists but cannot be read back (truncated, or not in the expected format)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def atomic_save_torch(state: Any, path: Path) -> None:
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


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
