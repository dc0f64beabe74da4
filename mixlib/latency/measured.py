"""Measured Jetson CSVs: read a results folder and put the measurements in place of the projection.

The schema is `MEASURED_COLUMNS` (column name -> meaning; `schema_markdown()` renders it for the book),
defined once in the on-device script `orin_measure.py`, which must run with the Python standard library
alone and so cannot import this module, and re-exported here. One row is one model x precision x batch
measured by trtexec in one power mode.

A row is matched to a table entry by `model` (the ONNX stem `<label>_<input size>px`), `precision`,
`batch` and the power mode, with nvpmodel's names normalised (`MODE_30W` -> `30W`). Only rows whose
`device_model` names a Jetson AGX Orin replace the AGX Orin projection; other devices are kept as
measured rows under their own device name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mixlib.latency.orin_measure import CSV_COLUMNS

MEASURED_COLUMNS = CSV_COLUMNS
ORIN_DEVICE_PATTERN = "AGX Orin"
MATCH_KEY = ("model", "precision", "batch", "power_mode")


def schema_markdown() -> str:
    """The CSV schema as a Markdown table."""
    rows = [f"| `{name}` | {meaning} |" for name, meaning in MEASURED_COLUMNS.items()]
    return "\n".join(["| column | meaning |", "|---|---|", *rows])


def normalise_power_mode(name: str) -> str:
    """nvpmodel's mode names onto the projection's: MODE_50W -> 50W, MAXN stays MAXN."""
    return re.sub(r"^MODE_", "", str(name).strip().upper())


def read_measured(measured_dir: str | Path | None) -> pd.DataFrame:
    """Every `*.csv` of the folder (recursively), with a `source` column naming its file.

    No folder (None), a missing or an empty one gives an empty frame; a CSV without the schema's
    columns is an error.
    """
    folder = Path(measured_dir) if measured_dir is not None else None
    files = sorted(folder.rglob("*.csv")) if folder is not None and folder.is_dir() else []
    frames = []
    for file in files:
        frame = pd.read_csv(file, dtype={"power_mode_id": str, "jetpack": str, "tensorrt": str})
        missing = [c for c in MEASURED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{file}: not a measured CSV, missing columns {missing}")
        frames.append(frame.assign(source=str(file)))
    if not frames:
        return pd.DataFrame(columns=[*MEASURED_COLUMNS, "source"])
    measured = pd.concat(frames, ignore_index=True)
    measured["power_mode"] = measured["power_mode"].map(normalise_power_mode)
    measured["batch"] = measured["batch"].astype(int)
    measured["device_model"] = measured["device_model"].fillna("").astype(str)
    return measured


def measured_for(measured: pd.DataFrame, model_stem: str) -> pd.DataFrame:
    """The rows of one model."""
    return measured[measured["model"] == model_stem]


def is_orin(device_model: str) -> bool:
    return ORIN_DEVICE_PATTERN.lower() in device_model.lower()
