"""Warm kernels: a worker's notebooks share one kernel process, each starting from a clean namespace,
and a kernel that failed or died is not used again. Real kernels, tiny notebooks."""

import json
import os
import signal
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from mixlib.sweep.kernels import shut_down_idle_kernels, warm_kernel
from mixlib.sweep.runner import execute

REPORTS_PID = "import os, matplotlib.pyplot as plt\nprint(os.getpid())"
# what a notebook can change in the process and a namespace reset keeps
CHANGES_PROCESS_STATE = """
import os, torch
torch.use_deterministic_algorithms(True, warn_only=True)
torch.backends.cudnn.benchmark = torch.backends.cudnn.deterministic = True
torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
torch.set_num_threads(torch.get_num_threads() + 1)
torch.set_default_dtype(torch.float64)
torch.set_grad_enabled(False)
torch.set_anomaly_enabled(True)
torch.set_float32_matmul_precision("medium")
torch.set_autocast_enabled("cpu", True)
torch.set_autocast_dtype("cpu", torch.float16)
os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"  # training sets ":4096:8": this differs either way
"""
READS_PROCESS_STATE = """
import json, os
from mixlib.sweep.kernels import torch_settings
state = {name: repr(value) for name, value in torch_settings().items()}
print(json.dumps({**state, "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}))
"""


def notebook(path: Path, *sources: str) -> Path:
    document = nbformat.v4.new_notebook()
    document.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    document.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(document, path)
    return path


def run_warm(template: Path) -> tuple[str | None, nbformat.NotebookNode]:
    """Execute `template` in a warm kernel of its folder; the error and the executed notebook."""
    output = template.with_name(f"{template.stem}-out.ipynb")
    with warm_kernel(template.parent) as kernel:
        error = execute(template, output, {}, template.parent, progress_bar=False, kernel=kernel)
    return error, nbformat.read(output, as_version=4)


def kernel_pid(executed: nbformat.NotebookNode) -> int:
    """What the notebook's first code cell printed (papermill puts a markdown cell first after an error)."""
    first = next(cell for cell in executed.cells if cell.cell_type == "code")
    return int(first.outputs[0].text)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def no_idle_kernels_left():
    yield
    shut_down_idle_kernels()


def test_the_next_notebook_runs_in_the_same_kernel_with_nothing_of_the_last_one(tmp_path):
    first = notebook(tmp_path / "first.ipynb", REPORTS_PID, "x = 1\nplt.figure()")
    second = notebook(tmp_path / "second.ipynb", REPORTS_PID, "print(sorted({'x', 'plt'} & set(globals())))")
    probe = "print(len(plt.get_fignums()))"
    third = notebook(tmp_path / "third.ipynb", REPORTS_PID, probe)
    errors, executed = zip(*(run_warm(path) for path in (first, second, third)), strict=True)
    assert errors == (None, None, None)
    assert len({kernel_pid(each) for each in executed}) == 1
    assert executed[1].cells[1].outputs[0].text == "['plt']\n"  # imported again by its own first cell
    assert executed[2].cells[1].outputs[0].text == "0\n"  # the first notebook's figure was closed
    assert [cell.execution_count for cell in executed[2].cells] == [1, 2]  # a new session each time


def test_a_kernel_whose_notebook_failed_is_shut_down_and_not_used_again(tmp_path):
    error, failed = run_warm(notebook(tmp_path / "failing.ipynb", REPORTS_PID, "raise ValueError('bad')"))
    assert error == "ValueError: bad"
    assert gone(kernel_pid(failed))
    error, after = run_warm(notebook(tmp_path / "after.ipynb", REPORTS_PID))
    assert error is None and kernel_pid(after) != kernel_pid(failed)


def test_an_idle_kernel_that_died_is_replaced(tmp_path):
    error, first = run_warm(notebook(tmp_path / "first.ipynb", REPORTS_PID))
    os.kill(kernel_pid(first), signal.SIGKILL)
    while not gone(kernel_pid(first)):  # the signal is delivered asynchronously
        time.sleep(0.01)
    # and subprocess's poll() may miss a zombie for a moment; the kernel would then be asked to reset
    # and replaced only after RESET_TIMEOUT
    time.sleep(1)
    error, second = run_warm(notebook(tmp_path / "second.ipynb", REPORTS_PID))
    assert error is None and kernel_pid(second) != kernel_pid(first)


def test_idle_kernels_are_shut_down_on_request(tmp_path):
    error, executed = run_warm(notebook(tmp_path / "only.ipynb", REPORTS_PID))
    assert error is None and not gone(kernel_pid(executed))
    assert shut_down_idle_kernels() == 1
    assert gone(kernel_pid(executed))
    assert shut_down_idle_kernels() == 0


def printed_state(executed: nbformat.NotebookNode) -> dict:
    return json.loads(executed.cells[-1].outputs[0].text)


def test_the_next_notebook_sees_the_torch_settings_and_environment_of_a_fresh_kernel(tmp_path):
    reads = notebook(tmp_path / "reads.ipynb", READS_PROCESS_STATE)
    output = tmp_path / "fresh.ipynb"
    assert execute(reads, output, {}, tmp_path, progress_bar=False) is None  # a kernel of its own
    fresh = printed_state(nbformat.read(output, as_version=4))
    changes = notebook(tmp_path / "changes.ipynb", REPORTS_PID, CHANGES_PROCESS_STATE, READS_PROCESS_STATE)
    errors, executed = zip(*(run_warm(path) for path in (changes, reads)), strict=True)
    assert errors == (None, None)
    changed = printed_state(executed[0])
    untouched = {"cudnn.enabled", "autocast.cuda", "autocast_cache"}  # CHANGES_PROCESS_STATE leaves them
    assert {name for name in fresh if changed[name] != fresh[name]} == set(fresh) - untouched
    assert printed_state(executed[1]) == fresh
