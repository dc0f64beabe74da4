"""Model cost, latency measured here, ONNX export for TensorRT and the Jetson AGX Orin projection.

`python -m mixlib latency --help`; the book uses `latency_table` and `plot_latency_vs_flops`.
"""

from mixlib.latency.cost import ModelCost, model_cost
from mixlib.latency.export import check_onnx, export_onnx, trtexec_commands, write_onnx_bundle
from mixlib.latency.measure import BACKENDS, measure_latency
from mixlib.latency.measured import MEASURED_COLUMNS, read_measured
from mixlib.latency.orin import Calibration, Projection, calibrate, default_calibration, project, roofline
from mixlib.latency.table import latency_report, latency_table, plot_latency_vs_flops

__all__ = [
    "BACKENDS",
    "MEASURED_COLUMNS",
    "Calibration",
    "ModelCost",
    "Projection",
    "calibrate",
    "check_onnx",
    "default_calibration",
    "export_onnx",
    "latency_report",
    "latency_table",
    "measure_latency",
    "model_cost",
    "plot_latency_vs_flops",
    "project",
    "read_measured",
    "roofline",
    "trtexec_commands",
    "write_onnx_bundle",
]
