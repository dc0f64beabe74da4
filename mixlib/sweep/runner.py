"""`python -m mixlib report`: every notebook of a profile as a Dask task, then the book.

Each run is `train.ipynb` executed by papermill for one seed, on a worker of a local Dask cluster or
of a running scheduler (`mixlib.sweep.cluster`); a configuration's chapter is the same template
executed over its finished runs with `finished_runs_only`, which trains nothing, and starts as soon as
its own runs are done; the summary chapters start once every run is done, the timed ones (benchmarks,
training cost, latency) after them and alone, and the findings, which read the training cost, last.
A worker executes its notebooks one after the other in one warm kernel (`mixlib.sweep.kernels`),
reset between them, rather than starting and importing everything anew.

Layout (all relative to the repository root, the working directory):
- `runs/<profile>/<configuration>/seed<k>/`: one training run (`mixlib.runs.folder`) and
  `train.ipynb` + `train.json`, the executed notebook and the key it was made with
  (`mixlib.sweep.notebook_keys`: parameters, template, the package code it executes); a run only
  writes its own folder, and its two stages, training and evaluation, are each redone only when
  their own key changed (`mixlib.runs.keys`);
- `runs/<profile>/<configuration>/chapter.ipynb` + `chapter.json`: the configuration's chapter, the
  same way, keyed also by its runs' records;
- `runs/<profile>/summaries/<name>.ipynb` + `<name>.json`: the summary chapters of
  `mixlib.chapters.contents`, keyed by every run's records and the files the chapter reads; a chapter
  whose key holds is kept as it is;
- `book/generated/`: what the book shows for this profile (copies of those chapters, one per
  configuration, and the glossary), rewritten once every notebook has succeeded, and `_toc.yml`,
  written from the same chapter list; `_build/html/`: the built book.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
import papermill
from distributed import Client, Future, as_completed
from tqdm import tqdm

from mixlib.chapters.contents import (
    GENERATED,
    GLOSSARY,
    SUMMARY_CHAPTERS,
    TOC,
    TRAIN_TEMPLATE,
    Chapter,
    table_of_contents,
)
from mixlib.chapters.glossary import write_glossary_page
from mixlib.config import RunConfig
from mixlib.files import atomic_write_json, exclusive_lock, read_json, read_or_set_aside
from mixlib.profiles import (
    Configuration,
    Profile,
    available_profiles,
    load_profile,
    wall_time_warning,
)
from mixlib.runs import RunFolder, configuration_folder, run_folder
from mixlib.runs.keys import other_methods_modules
from mixlib.runs.load import EVALUATION_STAGE, TRAINING_STAGE, next_stage
from mixlib.sweep.cluster import (
    GPU_RESOURCE,
    dask_client,
    every_core_for_kernels,
    kernels_use_the_default_allocator,
    task_resources,
)
from mixlib.sweep.kernels import RECORD_FRESH_STATE, WarmKernel, shut_down_idle_kernels, warm_kernel
from mixlib.sweep.notebook_keys import notebook_fingerprint, template_code

GLOSSARY_DATA = Path("book/glossary.yml")
CHAPTER = "chapter.ipynb"  # a configuration's chapter, next to its seed folders
BOOK_LOCK = GENERATED.with_name(f".{GENERATED.name}.lock")
SUMMARIES = "summaries"  # <runs_dir>/summaries/<name>.ipynb: the executed summary chapters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="quick", help=f"profile name ({', '.join(available_profiles())}) or a .yml path"
    )
    parser.add_argument("--data-root", default=None, help="dataset folder, overrides the profile's data_root")
    parser.add_argument("--runs-dir", default=None, help="where run folders go (default runs/<profile>)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="execute every notebook again even where its key holds (current run stages are still reused)",
    )
    parser.add_argument("--no-build", action="store_true", help="run the notebooks but do not build the book")
    parser.add_argument(
        "--scheduler", default=None, help="address of a running Dask scheduler (default: a local cluster)"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="local Dask workers, each training one run at a time",
    )
    parser.add_argument(
        "--runs-per-gpu", type=positive_int, default=None, help="runs sharing one GPU (local or --scheduler)"
    )


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class NotebookTask:
    """One papermill execution on a Dask worker: a (configuration, seed) run, a configuration's chapter,
    or a summary chapter."""

    name: str  # the configuration, or the summary chapter
    seed: int | None  # None: a chapter over all seeds
    template: Path  # relative to the root
    root: Path  # the repository root, the kernel's working directory
    output: Path
    parameters: dict
    code: str  # the key of the package code the template executes (`template_code`)
    inputs: tuple[Path, ...] = ()  # the records and files it reads, hashed into its fingerprint
    timed: bool = False  # a summary chapter that measures time (`Chapter.timed`): it runs alone
    config: RunConfig | None = None  # a run's parameters (None for a chapter): its records are checked

    @property
    def record(self) -> Path:
        return self.output.with_suffix(".json")

    @property
    def kind(self) -> str:
        return "run" if self.seed is not None else "chapter" if self.template == TRAIN_TEMPLATE else "summary"

    @property
    def key(self) -> str:
        """The Dask key: what the dashboard shows for this task."""
        return f"{self.kind}-{self.name}" + ("" if self.seed is None else f"-seed{self.seed}")

    @property
    def lock(self) -> Path:
        """The lock file of the notebook (and of its record): one report at a time executes it."""
        return self.output.with_name(f".{self.output.name}.lock")

    def fingerprint(self) -> str:
        """The key of the notebook as its inputs are now: taken when it has been executed, and compared
        with that record before it is executed again."""
        return notebook_fingerprint(
            self.parameters, self.root / self.template, self.code, self.inputs, self.root
        )

    def is_current(self) -> bool:
        """Executed with these parameters, template, code and inputs; for a run, also with both stages'
        records whole and current (a damaged one is set aside here, so its stage runs again)."""
        return self.notebook_is_current() and (self.config is None or self.next_stage() is None)

    def notebook_is_current(self) -> bool:
        if not (self.output.is_file() and self.record.is_file()):
            return False
        record = read_or_set_aside(self.record, read_json, "the notebook runs again")
        return isinstance(record, dict) and record.get("fingerprint") == self.fingerprint()

    def next_stage(self) -> str | None:
        """The stage a run's notebook will run (`mixlib.runs.load.next_stage`)."""
        return next_stage(RunFolder(self.output.parent), self.config)

    def describe(self) -> str:
        if self.kind == "summary":
            return f"summary chapter {self.name!r}"
        return f"configuration {self.name!r}, " + ("chapter" if self.seed is None else f"seed {self.seed}")


@dataclass
class Failure:
    task: NotebookTask
    error: str


def run(args: argparse.Namespace) -> int:
    root = Path.cwd()
    if not (root / "_config.yml").is_file() or not (root / TRAIN_TEMPLATE).is_file():
        raise FileNotFoundError(
            "run `python -m mixlib report` from the repository root (where _config.yml is)"
        )
    profile = load_profile(args.profile, args.data_root)
    check_chapter_settings(profile, root)
    runs_dir = Path(args.runs_dir or Path("runs") / profile.name)
    warning = wall_time_warning(profile, runs_dir)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with dask_client(args.scheduler, args.workers, args.runs_per_gpu) as client:
        print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        resources = task_resources(client, args.runs_per_gpu) if args.scheduler else None
        outcome = run_sweep(client, profile, runs_dir, root, args.force, resources)
    if outcome.failures:
        for failure in outcome.failures:
            print(
                f"FAILED {failure.task.describe()}: {failure.error}\n  notebook: {failure.task.output}",
                file=sys.stderr,
            )
        print(
            f"{len(outcome.failures)} notebook(s) failed; book not built. "
            "Finished runs are kept and will not rerun.",
            file=sys.stderr,
        )
        return 1
    print(notebook_overhead([task.output for task in run_tasks(profile, runs_dir, root)]), flush=True)
    # one report at a time rewrites the book's sources and builds it
    with exclusive_lock(root / BOOK_LOCK, f"the book sources ({GENERATED}/, {TOC}, _build/)"):
        write_book_sources(profile, runs_dir)
        (root / TOC).write_text(table_of_contents())
        if not args.no_build:
            build_book(root)
    print(f"report for profile {profile.name!r}: {outcome}", flush=True)
    done = f"report for profile {profile.name!r} done in {time.perf_counter() - start:.0f} s: "
    if args.no_build:
        print(
            done + f"notebooks executed in {runs_dir}, book sources written to {GENERATED}/ (book not built)"
        )
    else:
        print(done + str(root / "_build" / "html" / "index.html"))
    return 0


def run_sweep(
    client: Client,
    profile: Profile,
    runs_dir: Path,
    root: Path,
    force: bool,
    resources: dict[str, float] | None = None,
) -> SweepOutcome:
    """Every notebook of the report as a Dask task, each submitted once the runs it reads have finished
    and a worker is free: the (configuration, seed) runs, each configuration's chapter after its own
    runs, the summary chapters after every run; the timed summaries then, one at a time with nothing
    beside them so that their clocks measure only themselves; last the summaries that read what the
    timed ones measured. Nothing that reads a failed run is executed, and a notebook whose key still
    holds once what it reads has finished is not executed again (unless `force`)."""
    runs = run_tasks(profile, runs_dir, root)
    stages = {task.key: task.next_stage() for task in runs}
    pending = [
        task for task in runs if force or stages[task.key] is not None or not task.notebook_is_current()
    ]
    plan = RunPlan.of(stages.values())
    print(f"{plan}; {len(pending)} run notebook(s) to execute", flush=True)
    sweep = Sweep(client, resources, force)
    for task in pending:
        sweep.add(task, check=False)
    for configuration in profile.configurations:
        own_runs = [task for task in pending if task.name == configuration.name]
        sweep.add(notebook_task(configuration, profile, runs_dir, root), after=own_runs)
    for summary in summary_tasks(profile, runs_dir, root, UNTIMED):
        sweep.add(summary, after=pending)
    failures = sweep.wait()
    client.run(shut_down_idle_kernels)  # the timed chapters run alone
    for summary in summary_tasks(profile, runs_dir, root, TIMED):
        if failures:
            break
        sweep.add(summary)
        failures = sweep.wait()
    readers = [] if failures else summary_tasks(profile, runs_dir, root, AFTER_TIMED)
    for summary in readers:
        sweep.add(summary)
    failures = sweep.wait() if readers else failures
    return SweepOutcome(failures, plan, sweep.executed, sweep.unchanged)


@dataclass(frozen=True)
class RunPlan:
    """How many of a report's runs train, are only evaluated again, or are reused as they are."""

    train: int
    evaluate: int
    reuse: int

    @classmethod
    def of(cls, stages: Iterable[str | None]) -> RunPlan:
        """From each run's `next_stage`."""
        counts = Counter(stages)
        return cls(counts[TRAINING_STAGE], counts[EVALUATION_STAGE], counts[None])

    def __str__(self) -> str:
        total = self.train + self.evaluate + self.reuse
        return f"{total} run(s): {self.train} to train, {self.evaluate} to re-evaluate, {self.reuse} reused"


@dataclass
class SweepOutcome:
    failures: list[Failure]
    runs: RunPlan
    executed: int  # notebooks executed
    unchanged: int  # notebooks whose key held, kept as they were

    def __str__(self) -> str:
        plan = self.runs
        return (
            f"trained {plan.train}, re-evaluated {plan.evaluate} and reused {plan.reuse} run(s); "
            f"executed {self.executed} notebook(s), kept {self.unchanged} unchanged"
        )


class Sweep:
    """Notebook tasks on one Dask client, each submitted once the tasks it reads have all finished and
    a worker is free to take it, in the order they were added.

    Both waits are done here, not by Dask: the scheduler places a task on a worker when it is
    submitted (on the one holding its dependencies, or the least busy by its estimate, two per
    one-thread worker), and on the smoke profile the summary chapters queued behind one another on one
    worker while the other stood idle. Submitted only when a slot is free, a task goes where it runs.

    A task is checked for its key (`NotebookTask.is_current`) once the tasks it reads have finished,
    as only then are its inputs what it will read; a current one is kept without executing it.
    """

    def __init__(self, client: Client, resources: dict[str, float] | None, force: bool = False) -> None:
        self.client, self.resources, self.force = client, resources, force
        self.waiting: list[tuple[NotebookTask, list[NotebookTask], bool]] = []
        self.running: dict[Future, NotebookTask] = {}
        self.outcomes: dict[str, str | None] = {}  # task key -> its error, None when it succeeded
        self.stale: set[str] = set()  # tasks checked and found not current
        self.executed = self.unchanged = 0

    def add(self, task: NotebookTask, after: Sequence[NotebookTask] = (), check: bool = True) -> None:
        """Run `task` once `after` have succeeded; with `check`, only if it is not current by then."""
        self.waiting.append((task, list(after), check and not self.force))

    def wait(self) -> list[Failure]:
        """Run every added task; the failures, without the tasks left out because one they read failed."""
        failures = []
        runs = sum(task.seed is not None for task, _, _ in self.waiting)
        description = f"notebooks ({runs} run(s), {len(self.waiting) - runs} chapter(s))"
        with tqdm(total=len(self.waiting), desc=description, unit="notebook") as progress:
            finished = as_completed()
            progress.update(self.submit_ready(finished))
            for future in finished:
                task = self.running.pop(future)
                self.outcomes[task.key] = error = notebook_error(future)
                if error is not None:
                    failures.append(Failure(task, error))
                progress.update(1 + self.submit_ready(finished))
        return failures

    def submit_ready(self, finished: as_completed) -> int:
        """Submit each waiting task whose upstream tasks have all succeeded and that is not current, keep
        those that are, and drop those after a failed one; returns how many were kept or dropped."""
        waiting, settled, slots = [], 0, self.slots()
        for task, after, check in self.waiting:
            ready = all(upstream.key in self.outcomes for upstream in after)
            if any(self.outcomes.get(upstream.key) for upstream in after):
                settled += 1
            elif ready and check and task.key not in self.stale and self.keep_if_current(task):
                settled += 1
            elif ready and len(self.running) < slots:
                future = self.client.submit(run_notebook_task, task, key=task.key, resources=self.resources)
                self.running[future] = task
                self.executed += 1
                finished.add(future)
            else:
                waiting.append((task, after, check))
        self.waiting = waiting
        return settled

    def keep_if_current(self, task: NotebookTask) -> bool:
        if task.is_current():
            self.outcomes[task.key] = None
            self.unchanged += 1
            return True
        self.stale.add(task.key)
        return False

    def slots(self) -> int:
        """Notebooks the cluster runs at once: one per worker thread, fewer where each task takes a share
        of the workers' GPUs. Read anew each time, as workers may come and go."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        slots = sum(worker["nthreads"] for worker in workers)
        gpu_share = (self.resources or {}).get(GPU_RESOURCE)
        if gpu_share:
            gpus = sum(worker.get("resources", {}).get(GPU_RESOURCE, 0) for worker in workers)
            slots = min(slots, round(gpus / gpu_share))
        return max(1, slots)


def notebook_error(future: Future) -> str | None:
    if future.status == "error":
        error = future.exception()
        return f"{type(error).__name__}: {error}"
    return future.result()


def run_tasks(profile: Profile, runs_dir: Path, root: Path) -> list[NotebookTask]:
    return [
        notebook_task(configuration, profile, runs_dir, root, seed)
        for configuration in profile.configurations
        for seed in profile.seeds
    ]


def notebook_task(
    configuration: Configuration, profile: Profile, runs_dir: Path, root: Path, seed: int | None = None
) -> NotebookTask:
    """Seed `seed`'s run of `configuration`, or with no seed the chapter over all the profile's seeds."""
    parameters = {k: v for k, v in configuration.parameters().items() if k != "seed"}
    parameters.update(config_name=configuration.name, runs_dir=str(runs_dir))
    if seed is None:
        parameters.update(seeds=list(profile.seeds), finished_runs_only=True)
        output = configuration_folder(root / runs_dir, configuration.name) / CHAPTER
    else:
        parameters.update(seeds=[seed])
        output = run_folder(root / runs_dir, configuration.name, seed).path / TRAIN_TEMPLATE.name
    # a run notebook or chapter never executes another method's own code
    code = template_code(root / TRAIN_TEMPLATE, other_methods_modules(configuration.config))
    if seed is None:
        inputs = tuple(run_folder(root / runs_dir, configuration.name, k).metrics_file for k in profile.seeds)
        return NotebookTask(configuration.name, None, TRAIN_TEMPLATE, root, output, parameters, code, inputs)
    config = configuration.config.replace(seed=seed)
    return NotebookTask(
        configuration.name, seed, TRAIN_TEMPLATE, root, output, parameters, code, config=config
    )


# the phases of the summary chapters, in the order they run
UNTIMED, TIMED, AFTER_TIMED = "untimed", "timed", "after timed"


def chapter_phase(chapter: Chapter) -> str:
    return TIMED if chapter.timed else AFTER_TIMED if chapter.reads_timed else UNTIMED


def summary_tasks(profile: Profile, runs_dir: Path, root: Path, phase: str) -> list[NotebookTask]:
    """The summary chapters of `phase`: the untimed ones (beside each other, after the runs), the timed
    ones (each alone) or those that read what the timed ones measured (after them)."""
    return [summary_task(c, profile, runs_dir, root) for c in SUMMARY_CHAPTERS if chapter_phase(c) == phase]


def summary_task(chapter: Chapter, profile: Profile, runs_dir: Path, root: Path) -> NotebookTask:
    """`chapter` over the profile's runs, executed into `<runs_dir>/summaries/`; its inputs are every
    run's record of the stage the chapter shows (`Chapter.run_stage`) and the files the chapter list
    says it reads (`Chapter.reads`)."""
    parameters = {**summary_parameters(profile, runs_dir), **profile.chapter_settings.get(chapter.name, {})}
    folders = [
        run_folder(root / runs_dir, configuration.name, seed)
        for configuration in profile.configurations
        for seed in profile.seeds
    ]
    runs = [stage_record(folder, chapter.run_stage) for folder in folders]
    files = [root / path.format(runs_dir=runs_dir) for path in chapter.reads]
    return NotebookTask(
        chapter.name,
        None,
        chapter.template,
        root,
        root / runs_dir / SUMMARIES / f"{chapter.name}.ipynb",
        parameters,
        template_code(root / chapter.template),
        (*runs, *files),
        chapter.timed,
    )


def check_chapter_settings(
    profile: Profile, root: Path, chapter_list: Sequence[Chapter] = SUMMARY_CHAPTERS
) -> None:
    """The profile's `chapters` section names summary chapters and parameters their templates have,
    other than those the runner sets from the profile itself."""
    chapters = {chapter.name: chapter for chapter in chapter_list}
    for name, settings in profile.chapter_settings.items():
        if name not in chapters:
            raise ValueError(
                f"profile {profile.name!r}: chapters: unknown chapter {name!r}; allowed: {sorted(chapters)}"
            )
        allowed = template_parameter_names(root / chapters[name].template) - set(
            summary_parameters(profile, Path())
        )
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ValueError(
                f"profile {profile.name!r}: chapters: {name}: unknown parameter(s) {unknown}; "
                f"allowed: {sorted(allowed)}"
            )


def template_parameter_names(template: Path) -> set[str]:
    """The names its cell tagged `parameters` assigns."""
    notebook = nbformat.read(template, as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    return {
        target.id
        for cell in cells
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def stage_record(folder: RunFolder, stage: str) -> Path:
    """The record a run's `stage` writes last, so it changes whenever the stage ran again."""
    records = {TRAINING_STAGE: folder.training_file, EVALUATION_STAGE: folder.metrics_file}
    if stage not in records:
        raise ValueError(f"run_stage must be one of {sorted(records)}, not {stage!r}")
    return records[stage]


def summary_parameters(profile: Profile, runs_dir: Path) -> dict:
    return {
        "profile_name": profile.name,
        "profile_title": profile.title,
        "profile_description": profile.description,
        "profile_sizing": profile.sizing,
        "runs_dir": str(runs_dir),
        "configurations": [c.name for c in profile.configurations],
        "seeds": list(profile.seeds),
    }


def run_notebook_task(task: NotebookTask) -> str | None:
    """Runs on a Dask worker: execute the template into the task's folder and record its fingerprint.

    The kernel gets the worker's thread count and glibc's own allocator settings (not Dask's, see
    `kernels_use_the_default_allocator`), and is one of the worker's warm kernels
    (`mixlib.sweep.kernels`). A timed chapter runs alone in a kernel of its own that gets every core
    of the worker's machine, as it had when the report ran one notebook at a time.

    The notebook is locked meanwhile (`NotebookTask.lock`): a report that finds it locked by another
    says which process holds it, waits, and reuses what that one made if it is current."""
    task.output.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(task.lock, f"{task.describe()} ({task.output})") as waited:
        if waited and task.is_current():
            return None
        return execute_task(task)


def execute_task(task: NotebookTask) -> str | None:
    """`run_notebook_task` once the notebook is this worker's."""
    task.record.unlink(missing_ok=True)
    kernels_use_the_default_allocator()
    # a timed chapter's kernel is None: execute starts a fresh one
    with every_core_for_kernels() if task.timed else warm_kernel(task.root) as kernel:
        error = execute(
            task.root / task.template,
            task.output,
            task.parameters,
            task.root,
            progress_bar=False,
            kernel=kernel,
        )
    if error is None:
        atomic_write_json(task.record, {"fingerprint": task.fingerprint()})
    return error


def execute(
    template: Path,
    output: Path,
    parameters: dict,
    cwd: Path | None = None,
    progress_bar: bool = True,
    kernel: WarmKernel | None = None,
) -> str | None:
    """Run one template with papermill, in `kernel` or a kernel of its own; returns an error summary, or
    None on success.

    A kernel that never started is started again (up to `KERNEL_START_ATTEMPTS` times): jupyter_client
    picks a kernel's TCP ports by briefly binding free ones, so a kernel started at the same moment in
    another worker process can take one first, and the new kernel dies on "Address already in use"
    (it failed CI that way with two workers). No cell has run then, so starting again is safe.
    """
    attempts_left = KERNEL_START_ATTEMPTS
    while True:
        try:
            papermill.execute_notebook(
                str(template),
                str(output),
                parameters=parameters,
                cwd=str(cwd or Path.cwd()),
                progress_bar=progress_bar,
                km=None if kernel is None else kernel.manager,
                # read by nbclient only when it starts the kernel
                extra_arguments=[] if kernel is None else [RECORD_FRESH_STATE],
            )
            error = None
        except papermill.PapermillExecutionError as failure:
            error = f"{failure.ename}: {failure.evalue}"
        except RuntimeError as failure:
            attempts_left -= 1
            if not kernel_did_not_start(failure) or attempts_left == 0:
                raise
            print(f"{output}: {failure}; starting a new kernel for it", file=sys.stderr, flush=True)
            if kernel is not None:
                kernel.start_again()
            continue
        if kernel is not None:
            kernel.finished_notebook(succeeded=error is None)
        return error


KERNEL_START_ATTEMPTS = 3
# what jupyter_client's `wait_for_ready` raises when a new kernel never answers its first request
KERNEL_START_FAILURES = ("Kernel didn't respond in", "Kernel died before replying to kernel_info")


def kernel_did_not_start(error: RuntimeError) -> bool:
    return str(error).startswith(KERNEL_START_FAILURES)


def notebook_overhead(notebooks: Sequence[Path]) -> str:
    """How much of the run notebooks' time went to anything but the cell tagged `training` (kernel
    start, imports, figures): the price of one notebook per run, from papermill's own timings. A
    notebook without those timings (made by an older template) is left out."""
    timed = [timings(nbformat.read(path, as_version=4)) for path in notebooks]
    timed = [pair for pair in timed if pair is not None]
    total = sum(whole for whole, _ in timed)
    outside = total - sum(training for _, training in timed)
    share = f" ({outside / total:.0%})" if total else ""
    return (
        f"{len(timed)} timed run notebook(s): {total:.0f} s, of which {outside:.0f} s{share} outside "
        "training (kernel start, imports, figures)"
    )


def timings(notebook: nbformat.NotebookNode) -> tuple[float, float] | None:
    """(the notebook's seconds, its training cell's seconds), or None where papermill did not time both."""
    whole = notebook.metadata.get("papermill", {}).get("duration")
    training = [
        cell.metadata.get("papermill", {}).get("duration")
        for cell in notebook.cells
        if "training" in cell.metadata.get("tags", [])
    ]
    if whole is None or len(training) != 1 or training[0] is None:
        return None
    return whole, training[0]


# --------------------------------------------------------------------------- book sources


def write_book_sources(profile: Profile, runs_dir: Path) -> None:
    """Rewrite book/generated/ for this profile from the executed notebooks: the configuration
    chapters, the summary chapters and the glossary."""
    shutil.rmtree(GENERATED, ignore_errors=True)
    (GENERATED / "runs").mkdir(parents=True)
    for number, configuration in enumerate(profile.configurations, start=1):
        notebook = nbformat.read(configuration_folder(runs_dir, configuration.name) / CHAPTER, as_version=4)
        set_title(notebook, configuration, profile)
        hide_injected_parameters(notebook)
        nbformat.write(notebook, GENERATED / "runs" / f"{number:02d}-{configuration.name}.ipynb")
    for chapter in SUMMARY_CHAPTERS:
        notebook = nbformat.read(runs_dir / SUMMARIES / f"{chapter.name}.ipynb", as_version=4)
        hide_injected_parameters(notebook)
        nbformat.write(notebook, GENERATED / f"{chapter.name}.ipynb")
    write_glossary_page(GLOSSARY_DATA, GLOSSARY.with_suffix(".md"))


def set_title(notebook: nbformat.NotebookNode, configuration: Configuration, profile: Profile) -> None:
    """The template's first cell is its heading; a chapter is titled by its configuration and points to
    the findings page, where the profile is described once for the whole book."""
    first = notebook.cells[0]
    first.source = (
        f"# {configuration.title}\n\nConfiguration `{configuration.name}` of the `{profile.name}` profile "
        f"({profile.title}); {len(profile.seeds)} seed(s): {', '.join(map(str, profile.seeds))}; see "
        f"{{doc}}`the findings </{GENERATED}/findings>` for what the profile is and how it was sized."
    )


def hide_injected_parameters(notebook: nbformat.NotebookNode) -> None:
    """papermill's injected cell documents the run in the .ipynb; the book shows a parameter table instead."""
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")


def build_book(root: Path) -> None:
    """`jupyter-book build` with warnings as errors; the notebooks are already executed."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "--builder", "html", "-W", "-n", "--keep-going"]
    print("building the book:", " ".join(command), flush=True)
    subprocess.run(command, check=True)
