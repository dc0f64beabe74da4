"""The report's sweep on Dask: worker planning and pinning, slots, a worker killed mid-run, kernels that did
not start, the cache lock, the README's Slurm example.

Real Dask processes and real papermill kernels throughout; the sweep is kept to one tiny run.
"""

import json
import multiprocessing
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import dask
import nbformat
import papermill
import pytest
import torch
import yaml

from mixlib.cli import main
from mixlib.data.synthetic import SyntheticSpec, generate_synthetic
from mixlib.files import atomic_write_json, exclusive_lock
from mixlib.profiles import Configuration, Profile, load_profile
from mixlib.runs import RunFolder, train_run
from mixlib.runs.folder import METRICS
from mixlib.sweep import runner
from mixlib.sweep.cluster import (
    DEFAULT_RUNS_PER_GPU,
    THREAD_VARIABLES,
    PinnedLocalCluster,
    WorkerPlan,
    dask_client,
    every_core_for_kernels,
    plan_workers,
    task_resources,
)
from mixlib.sweep.runner import (
    AFTER_TIMED,
    KERNEL_START_ATTEMPTS,
    TIMED,
    UNTIMED,
    NotebookTask,
    Sweep,
    execute,
    notebook_overhead,
    notebook_task,
    run_notebook_task,
    summary_tasks,
)

REPOSITORY = Path(__file__).resolve().parents[1]
TIMING = {"epoch_seconds"}  # the only metric that may differ between two runs of one configuration


def test_cpu_machine_gets_one_one_thread_worker_per_core():
    assert plan_workers(cores=2, gpus=0) == [WorkerPlan(threads=1)] * 2
    assert plan_workers(cores=8, gpus=0, workers=3) == [WorkerPlan(threads=2)] * 3
    assert plan_workers(cores=2, gpus=0, workers=4) == [WorkerPlan(threads=1)] * 4


def test_gpu_machine_pins_runs_per_gpu_workers_to_each_gpu():
    plans = plan_workers(cores=16, gpus=2, runs_per_gpu=3)
    assert [plan.gpu for plan in plans] == [0, 1, 0, 1, 0, 1]
    assert {plan.threads for plan in plans} == {2}
    assert len(plan_workers(cores=16, gpus=2)) == 2 * DEFAULT_RUNS_PER_GPU
    assert plans[1].environment() == {
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
        "CUDA_VISIBLE_DEVICES": "1",
    }


@pytest.mark.parametrize(
    ("gpus", "workers", "runs_per_gpu", "message"),
    [(0, None, 2, "--runs-per-gpu needs a GPU"), (1, 2, 2, "--workers or --runs-per-gpu, not both")],
)
def test_conflicting_worker_options_are_refused(gpus, workers, runs_per_gpu, message):
    with pytest.raises(ValueError, match=message):
        plan_workers(cores=4, gpus=gpus, workers=workers, runs_per_gpu=runs_per_gpu)


def test_scheduler_and_local_worker_count_are_exclusive():
    with pytest.raises(ValueError, match="--workers sizes the local cluster"), dask_client("tcp://0:1", 2):
        pass


@pytest.mark.slow
def test_each_local_worker_process_gets_its_own_gpu_and_threads():
    """Pinning without a GPU: the variables each worker process (and so its kernels) starts with."""
    plans = [WorkerPlan(threads=1, gpu=0), WorkerPlan(threads=1, gpu=1)]
    names = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
    with PinnedLocalCluster(plans, dashboard_address=":0", resources={"GPU": 1}) as cluster:
        with cluster.get_client() as client:
            client.wait_for_workers(2)
            seen = client.run(lambda: tuple(os.environ.get(name) for name in names))
            assert sorted(seen.values()) == [("0", "1"), ("1", "1")]
            assert task_resources(client, 4) == {"GPU": 0.25}
            assert task_resources(client, None) is None
    with PinnedLocalCluster(plans[:1], dashboard_address=":0") as cluster, cluster.get_client() as client:
        client.wait_for_workers(1)
        with pytest.raises(ValueError, match="--resources GPU=1"):
            task_resources(client, 2)


def kill_profile(tmp_path: Path) -> Path:
    path = tmp_path / "kill.yml"
    defaults = dict(images_per_class=6, val_per_class=2, test_per_class=3, image_size=32, epochs=3)
    defaults.update(batch_size=16, warmup_epochs=1)
    document = {"name": "kill", "seeds": [0], "defaults": defaults, "configurations": [{"name": "base"}]}
    path.write_text(yaml.safe_dump(document))
    return path


def wait_for(condition, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_from_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(REPOSITORY)
    profile = load_profile(str(kill_profile(tmp_path)))
    task = notebook_task(profile.configurations[0], profile, tmp_path / "runs", REPOSITORY, seed=0)
    run = RunFolder(task.output.parent)
    with dask_client(workers=2) as client:
        pids = client.run(os.getpid)
        outcome = {}
        sweep = threading.Thread(
            target=lambda: outcome.update(failures=submit_and_wait(Sweep(client, None), task))
        )
        sweep.start()
        # epoch 1 is checkpointed (or the task already failed: the assertions below say how)
        wait_for(lambda: run.history_file.is_file() or not sweep.is_alive())
        assert run.history_file.is_file(), f"the run ended before its first epoch: {outcome}"
        first_epoch = run.read_history().iloc[0]
        (address,) = [worker for worker, keys in client.processing().items() if keys]
        os.kill(pids[address], signal.SIGKILL)
        assert not run.is_finished(), "killed too late: the run had already finished"
        sweep.join()
    assert outcome["failures"] == []
    assert run.read_history().iloc[0].equals(first_epoch)  # resumed, not restarted
    metrics = run.read_metrics()
    torch.set_num_threads(metrics["threads"])  # the kernel's thread count: CAM scores depend on it
    straight = train_run(
        profile.configurations[0].config.replace(seed=0), tmp_path / "straight", progress=False
    )
    # the two checkpoints hold the same weights, but each history holds its own run's epoch times: their
    # bytes, and so the evaluation keys, differ
    differ = (*TIMING, "evaluation_fingerprint")
    assert {k: v for k, v in metrics.items() if k not in differ} == {
        k: v for k, v in straight.metrics.items() if k not in differ
    }
    resumed = torch.load(run.checkpoint_files[0], weights_only=False)["model"]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed[name]), name


def submit_and_wait(sweep: Sweep, task) -> list:
    sweep.add(task)
    return sweep.wait()


def generate_after(barrier, root: Path, spec: SyntheticSpec) -> None:
    barrier.wait()
    generate_synthetic(root, spec)


def test_workers_starting_at_once_share_one_synthetic_cache(tmp_path):
    spec = SyntheticSpec(num_classes=2, train_per_class=30, test_per_class=10, image_size=32)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    processes = [
        context.Process(target=generate_after, args=(barrier, tmp_path / "cache", spec)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert len(list((tmp_path / "cache").rglob("*.png"))) == 2 * 2 * (30 + 10)


@pytest.mark.parametrize("option", ["--workers", "--runs-per-gpu"])
def test_worker_counts_must_be_positive(option, capsys):
    with pytest.raises(SystemExit):
        main(["report", option, "0"])
    assert f"{option}: must be a positive integer, got '0'" in capsys.readouterr().err


def test_the_findings_run_after_the_timed_chapters_whose_measurements_they_read(tmp_path):
    profile = load_profile("smoke")
    phases = {
        phase: [task.name for task in summary_tasks(profile, tmp_path, REPOSITORY, phase)]
        for phase in (UNTIMED, TIMED, AFTER_TIMED)
    }
    assert phases[TIMED] == ["mixing", "training_cost", "latency"]  # each alone, in the chapter order
    assert phases[AFTER_TIMED] == ["findings"]  # they read training_cost.json
    assert "findings" not in phases[UNTIMED] and "training_cost" not in phases[UNTIMED]


def test_local_workers_do_not_run_the_statistical_profiler():
    with dask_client(workers=1) as client:
        (enabled,) = client.run(lambda: dask.config.get("distributed.worker.profile.enabled")).values()
    assert enabled is False


def timed_notebook(path: Path, whole: float | None, cells: list[tuple[float, list[str]]]) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["papermill"] = {"duration": whole}
    for seconds, tags in cells:
        cell = nbformat.v4.new_code_cell("pass")
        cell.metadata.update(tags=tags, papermill={"duration": seconds})
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def test_notebook_overhead_is_everything_but_the_training_cell(tmp_path):
    notebooks = [
        timed_notebook(tmp_path / "a.ipynb", 100.0, [(8.0, []), (80.0, ["training"]), (4.0, [])]),
        timed_notebook(tmp_path / "b.ipynb", 50.0, [(40.0, ["remove-input", "training"])]),
        timed_notebook(tmp_path / "old.ipynb", 30.0, [(25.0, [])]),  # no training tag: not counted
        timed_notebook(tmp_path / "unfinished.ipynb", None, [(5.0, ["training"])]),
    ]
    assert notebook_overhead(notebooks) == (
        "2 timed run notebook(s): 150 s, of which 30 s (20%) outside training "
        "(kernel start, imports, figures)"
    )


class FlakyKernelStart:
    """papermill.execute_notebook whose first `failures` kernels never start, with `error` each time."""

    def __init__(self, failures: int, error: str = "Kernel didn't respond in 60 seconds") -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self, *args, **kwargs) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(self.error)


@pytest.mark.parametrize(
    "error", ["Kernel didn't respond in 60 seconds", "Kernel died before replying to kernel_info"]
)
def test_a_kernel_that_did_not_start_is_started_again(tmp_path, monkeypatch, capsys, error):
    flaky = FlakyKernelStart(failures=KERNEL_START_ATTEMPTS - 1, error=error)
    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    assert execute(Path("template.ipynb"), tmp_path / "out.ipynb", {}) is None
    assert flaky.calls == KERNEL_START_ATTEMPTS
    assert "starting a new kernel for it" in capsys.readouterr().err


def test_kernel_start_is_tried_a_bounded_number_of_times(tmp_path, monkeypatch):
    flaky = FlakyKernelStart(failures=KERNEL_START_ATTEMPTS)
    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    with pytest.raises(RuntimeError, match="didn't respond"):
        execute(Path("template.ipynb"), tmp_path / "out.ipynb", {})
    assert flaky.calls == KERNEL_START_ATTEMPTS


def test_other_runtime_errors_are_not_retried(tmp_path, monkeypatch):
    flaky = FlakyKernelStart(failures=1, error="Kernel died")  # mid-run: cells may have written files
    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    with pytest.raises(RuntimeError, match="Kernel died"):
        execute(Path("template.ipynb"), tmp_path / "out.ipynb", {})
    assert flaky.calls == 1


def test_timed_chapters_kernels_get_every_core_and_the_workers_setting_comes_back(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with every_core_for_kernels():
        cores = str(len(os.sched_getaffinity(0)))
        assert (os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"]) == (cores, cores)
    assert os.environ["OMP_NUM_THREADS"] == "1" and "MKL_NUM_THREADS" not in os.environ


class ClusterInfo:
    """A client stand-in that only answers `scheduler_info`: two 4-thread workers with a GPU each."""

    def scheduler_info(self, n_workers: int) -> dict:
        worker = {"nthreads": 4, "resources": {"GPU": 1}}
        return {"workers": {"tcp://a": worker, "tcp://b": worker}}


@pytest.mark.parametrize(("resources", "slots"), [(None, 8), ({"GPU": 0.5}, 4), ({"GPU": 0.25}, 8)])
def test_a_sweep_runs_one_notebook_per_worker_thread_or_gpu_share(resources, slots):
    assert Sweep(ClusterInfo(), resources).slots() == slots


def test_the_readme_slurm_cluster_writes_a_job_script_for_this_repository():
    """The README's dask-jobqueue example, as written there: its job script starts a worker of this
    environment in the repository with a GPU resource (nothing is submitted: no job is asked for)."""
    from dask_jobqueue import SLURMCluster

    readme = (REPOSITORY / "README.md").read_text()
    call = re.search(r"cluster = (SLURMCluster\(.*?\))\n", readme, re.DOTALL).group(1)
    with eval(call, {"SLURMCluster": SLURMCluster}) as cluster:  # its scheduler runs here, no job starts
        script = cluster.job_script()
    assert "#SBATCH --gres=gpu:1" in script
    assert "cd /path/to/repo" in script
    assert "/path/to/repo/.venv/bin/python -m distributed.cli.dask_worker" in script
    assert "--resources GPU=1" in script


def test_a_local_cluster_leaves_this_process_environment_as_it_was(monkeypatch):
    """Dask's pre-spawn environment (OMP_NUM_THREADS=1) stayed in the starting process, and every kernel
    started there afterwards (the serial half of `bench sweep`) ran on one thread."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = dict(os.environ)
    with dask_client(workers=1):
        pass
    assert dict(os.environ) == before


def environment_template(path: Path) -> Path:
    """A template whose kernel writes its own environment to `output` (a parameter)."""
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('output = "environment.json"')
    parameters.metadata["tags"] = ["parameters"]
    dump = nbformat.v4.new_code_cell("import json, os\njson.dump(dict(os.environ), open(output, 'w'))")
    notebook.cells += [parameters, dump]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_kernels_on_a_local_worker_get_its_threads_and_not_dasks_allocator_setting(tmp_path):
    """Dask gives its workers MALLOC_TRIM_THRESHOLD_=65536; a kernel that inherited it trained about 30 %
    slower. The worker itself keeps it: it read it when it started."""
    template = environment_template(tmp_path / "environment.ipynb")
    seen = tmp_path / "kernel.json"
    task = NotebookTask("env", 0, template.name, tmp_path, tmp_path / "out.ipynb", {"output": str(seen)}, "f")
    with dask_client(workers=1) as client:
        (worker,) = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()
        assert client.submit(run_notebook_task, task).result() is None
    kernel = json.loads(seen.read_text())
    assert worker == "65536", "Dask no longer sets it: the workaround can go"
    assert "MALLOC_TRIM_THRESHOLD_" not in kernel
    cores = str(len(os.sched_getaffinity(0)))  # one worker: every core, for torch and numpy alike
    assert [kernel[name] for name in THREAD_VARIABLES] == [cores] * len(THREAD_VARIABLES)


@pytest.fixture
def current_run_task(finished_run, tiny_config, tmp_path) -> NotebookTask:
    """The runner's task for `finished_run`, with the executed notebook and record of a report."""
    configuration = Configuration("tiny", "tiny", tiny_config)
    profile = Profile("p", "p", "", (tiny_config.seed,), (configuration,))
    shutil.copytree(REPOSITORY / "notebooks", tmp_path / "notebooks")  # the notebook's key reads its template
    task = notebook_task(configuration, profile, Path("runs"), tmp_path, seed=tiny_config.seed)
    shutil.copytree(finished_run, task.output.parent)
    task.output.write_text("{}")
    atomic_write_json(task.record, {"fingerprint": task.fingerprint()})
    return task


def test_a_run_with_a_damaged_record_is_not_current(current_run_task):
    assert current_run_task.is_current()
    metrics = current_run_task.output.parent / METRICS
    metrics.write_text(metrics.read_text()[:10])
    with pytest.warns(UserWarning, match=rf"{metrics} is damaged.*set aside"):
        assert not current_run_task.is_current()
    assert not metrics.exists()  # set aside: the run executes again and resumes


def test_a_notebook_another_report_holds_is_waited_for_and_reused(current_run_task, monkeypatch, capsys):
    def executed(task):
        raise AssertionError("the other report's notebook was executed again")

    monkeypatch.setattr(runner, "execute_task", executed)
    held, release = threading.Event(), threading.Event()

    def other_report():  # a second open file description: flock makes it another owner
        with exclusive_lock(current_run_task.lock, "the other report's notebook"):
            held.set()
            release.wait(timeout=60)

    other = threading.Thread(target=other_report)
    other.start()
    held.wait(timeout=60)
    threading.Timer(0.5, release.set).start()
    assert run_notebook_task(current_run_task) is None
    other.join()
    err = capsys.readouterr().err
    assert (
        f"configuration 'tiny', seed 0 ({current_run_task.output}) is in use by process {os.getpid()}" in err
    )
