"""Suites: which training runs answer which of the paper's questions, and the scheduler that trains them.

A suite file (TOML, `bench/suites/<name>.toml`) names a dataset, optionally its recipe (else the dataset's
default), and a list of experiments; each experiment lists variant specs and the report kind it feeds
(report/kinds.py). Expanded with a recipe, a scale and a number of seeds, a suite is a list of resolved runs
(runs.py), each identified by its run id (records.py), so a spec shared by two experiments is trained once and
a run with a finished record is not trained again. Each run trains in a child process (`python -m bench train
...`, its output in RESULTS/suites/<suite>/logs/) that a launcher starts, here or on a Ray cluster
(launch.py), so one crash or divergence is recorded and the suite goes on.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from typing import Callable

import variants

from . import data as datasets
from . import recipe as recipes
from . import forecast, records, stopping
from .errors import UserError
from .launch import Job, Launcher
from .progress import duration
from .report.kinds import KINDS
from .runs import Request, Run

SUITES_DIR = Path(__file__).parent / "suites"
SUITE_KEYS = {"name", "dataset", "recipe", "experiments"}
# A suite's name and its experiments' keys name folders and files under the results folder: plain names only.
PLAIN_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9._-]*")  # used with fullmatch
PLAIN_WORDS = "letters, digits, '-', '_' and '.' (not '..', not first '.' or '-')"
EXPERIMENT_KEYS = {"title", "report", "runs", "expensive"}


class SuiteError(UserError):
    """A suite file that cannot be used; the message names the file and the key (or line) at fault."""


@dataclass(frozen=True)
class Experiment:
    key: str
    title: str
    report: str  # a kind of report/kinds.py
    runs: tuple[str, ...]  # canonical specs
    expensive: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str
    dataset: str
    path: Path
    experiments: dict[str, Experiment]
    recipe: str  # the suite's recipe unless --recipe says otherwise
    # each canonical spec of the experiments, parsed once (by the validator): runs are resolved from these
    specs: dict = field(default_factory=dict, compare=False)

    def recipe_or_default(self, recipe: str | None) -> str:
        return recipe or self.recipe


@dataclass(frozen=True)
class PlannedRun:
    """One run of a suite: the resolved run, and the experiments that asked for it."""

    run: Run
    experiments: tuple[str, ...]

    @property
    def spec(self) -> str:
        return self.run.canonical

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def run_id(self) -> str:
        return self.run.run_id


def available_suites() -> list[str]:
    return sorted(path.stem for path in SUITES_DIR.glob("*.toml"))


def load(name_or_path: str | os.PathLike) -> Suite:
    """A suite by name (`cifar10`) or by path to a TOML file, validated key by key."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            dataset = str(name_or_path)
            known = dataset in datasets.DATASETS
            another, name = (f"{dataset} is a dataset: ", dataset) if known else ("for another dataset, ", "NAME")
            raise SuiteError(f"unknown suite {dataset!r}; choose one of: {', '.join(available_suites())} or give the "
                             f"path of a .toml file ({another}`bench compare SPEC SPEC --dataset {name}`, or a suite "
                             f"file with dataset = \"{name}\": docs/suites.md, \"Your own suite\")")
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except tomllib.TOMLDecodeError as error:  # its message names the line and column
        raise SuiteError(f"{path}: {error}") from None
    return _validate(raw, path)


def _validate(raw: dict, path: Path) -> Suite:
    def fail(key: str, message: str):
        raise SuiteError(f"{path}: {key}: {message}")

    for key in raw:
        if key not in SUITE_KEYS:
            fail(key, f"unknown key; allowed: {', '.join(sorted(SUITE_KEYS))}")
    for key in ("name", "dataset"):
        if not isinstance(raw.get(key), str):
            fail(key, "missing or not a string")
    if not PLAIN_NAME.fullmatch(raw["name"]):
        fail("name", f"{raw['name']!r} is not allowed: a suite's name is {PLAIN_WORDS}, since it names the suite's "
                     f"folders under the results folder")
    try:
        declared = datasets.info(raw["dataset"])
    except datasets.DataError:
        fail("dataset", f"{raw['dataset']!r} is not allowed; choose one of: {datasets.names()}")
    recipe = raw.get("recipe", declared.default_recipe)
    if not isinstance(recipe, str) or recipe not in recipes.BUDGETS[declared.budget]:
        fail("recipe", f"{recipe!r} is not allowed for {raw['dataset']}; choose one of: "
                       f"{', '.join(recipes.BUDGETS[declared.budget])}")
    if not isinstance(raw.get("experiments"), dict) or not raw["experiments"]:
        fail("experiments", "missing: add at least one [experiments.NAME] table")
    experiments, parsed = {}, {}
    for name, table in raw["experiments"].items():
        where = f"experiments.{name}"
        if not PLAIN_NAME.fullmatch(name):
            fail(where, f"the key {name!r} is not allowed: an experiment's key is {PLAIN_WORDS}, since it names its "
                        f"report's files")
        if not isinstance(table, dict):
            fail(where, "must be a table ([experiments.NAME])")
        for key in table:
            if key not in EXPERIMENT_KEYS:
                fail(f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(EXPERIMENT_KEYS))}")
        if not isinstance(table.get("title"), str):
            fail(f"{where}.title", "missing or not a string")
        if table.get("report") not in KINDS:
            fail(f"{where}.report", f"{table.get('report')!r} is not allowed; choose one of: {', '.join(KINDS)}")
        kind = KINDS[table["report"]]
        specs = {}
        for list_key in ("runs", "expensive"):
            values = table.get(list_key, [])
            if list_key == "runs" and "runs" not in table:
                fail(f"{where}.runs", "missing (use runs = [] for an experiment that trains nothing)")
            if not isinstance(values, list):
                fail(f"{where}.{list_key}", "must be a list of variant specs")
            if values and not kind.trains:
                fail(f"{where}.{list_key}", f"a {kind.name} report trains nothing ({kind.shows}): leave it empty")
            canonical = []
            for index, spec in enumerate(values):
                if not isinstance(spec, str):
                    fail(f"{where}.{list_key}[{index}]", f"{spec!r} is not a spec string")
                try:
                    spec_object = variants.parse(spec)
                except variants.SpecError as error:
                    fail(f"{where}.{list_key}[{index}]", str(error))
                canonical.append(variants.canonical(spec_object))
                parsed[canonical[-1]] = spec_object
            specs[list_key] = tuple(dict.fromkeys(canonical))
        experiments[name] = Experiment(name, table["title"], table["report"], specs["runs"], specs["expensive"])
    return Suite(raw["name"], raw["dataset"], path, experiments, recipe, parsed)


def expand(suite: Suite, recipe: str | None = None, scale: float = 1.0, seeds: int = 1,
           only: list[str] | None = None, expensive: bool = False,
           checkpoint_every: int | None = None) -> list[PlannedRun]:
    """The runs the suite asks for, each once, in suite order (all specs for seed 0, then for seed 1, ...);
    with the suite's own recipe when `recipe` is None. Each spec is resolved once, for seed 0; its other seeds
    are that run with another seed."""
    recipe = suite.recipe_or_default(recipe)
    if seeds < 1:
        raise SuiteError(f"--seeds {seeds} is not allowed: it must be at least 1")
    chosen = only or list(suite.experiments)
    unknown = [name for name in chosen if name not in suite.experiments]
    if unknown:
        raise SuiteError(f"unknown experiment {unknown[0]!r} in --only; choose from: {', '.join(suite.experiments)}")
    wanted: dict[str, list[str]] = {}
    for name in chosen:
        experiment = suite.experiments[name]
        for spec in experiment.runs + (experiment.expensive if expensive else ()):
            wanted.setdefault(spec, []).append(name)
    first = {spec: Request(suite.specs.get(spec, spec), suite.dataset, recipe, scale, 0,
                           checkpoint_every=checkpoint_every).resolve() for spec in wanted}
    return [PlannedRun(first[spec].with_seed(seed), tuple(experiments))
            for seed in range(seeds) for spec, experiments in wanted.items()]


# ---- scheduling ----------------------------------------------------------------------------------------------

PROGRESS_EVERY = 60.0  # seconds between progress lines about the runs in flight


@dataclass
class SuiteResult:
    finished: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)  # already finished or diverged before this call
    diverged: list[PlannedRun] = field(default_factory=list)  # by this call or before
    failed: list[PlannedRun] = field(default_factory=list)
    elsewhere: list[PlannedRun] = field(default_factory=list)  # finished (or diverged) by another process meanwhile
    interrupted: list[PlannedRun] = field(default_factory=list)  # in flight when the suite was stopped
    waiting: list[PlannedRun] = field(default_factory=list)  # trained by another process when the suite stopped
    stopped_by: KeyboardInterrupt | None = None  # Ctrl-C or a signal (stopping.Stop): the suite stopped early


ARRAY_CHOICES = "auto, off or a number of seeds"
# `--array auto`: up to 4 seeds of a spec in one child. On the CPU its seeds take their steps in turn (paths.
# InTurnPath): the runs alone's img/s (0.97x, results/perf/cpu/array.md) and numbers to the last bit, and one
# process start, data load and cost line for all of them (3 smoke seeds of resnet20 on 5,000 CIFAR images: 26.5 s
# as one array, 3 x 13.7 s alone). On a GPU they are fused (paths.ArrayPath; not measured there yet: ResNet-20
# alone leaves an H100 over 99% idle, HFTA measured up to 15x for such jobs; each array checks that its seeds fit
# in memory).
AUTO_ARRAY = {"cpu": 4, "cuda": 4}


def array_size(choice: str, device: str) -> int:
    """The most seeds one training child trains together, for `--array CHOICE` on slots of `device`."""
    if choice == "auto":
        return AUTO_ARRAY["cuda" if device.startswith("cuda") else "cpu"]
    if choice == "off":
        return 1
    try:
        size = int(choice)
    except ValueError:
        size = 0
    if size < 1:
        raise SuiteError(f"--array {choice} is not allowed; choose {ARRAY_CHOICES} (1 or more)")
    return size


def arrays(todo: list[PlannedRun], size: int) -> list[list[PlannedRun]]:
    """The runs as training children take them: the seeds of one spec (same dataset, recipe and scale) in
    arrays of at most `size`, each a run of consecutive seeds (a child is given its first seed and a count),
    in the order the suite plans them (an array where its first seed stood)."""
    same: dict[str, list[PlannedRun]] = {}
    for run in todo:
        same.setdefault(run.run.with_seed(0).run_id, []).append(run)
    units, placed = [], set()
    for run in todo:
        key = run.run.with_seed(0).run_id
        if key in placed:
            continue
        placed.add(key)
        seeds = sorted(same[key], key=lambda planned: planned.seed)
        units += [seeds[i:i + size] for i in range(0, len(seeds), size)]
    order = {run.run_id: position for position, run in enumerate(todo)}
    return sorted(units, key=lambda unit: order[unit[0].run_id])


def run_suite(suite: Suite, planned: list[PlannedRun], launcher: Launcher, *, source: datasets.Source,
              results_dir: str | Path, child_arguments: Callable[[Run, str, float], list[str]],
              array: str = "off") -> SuiteResult:
    """Train every planned run that has no finished record, as many at a time as the launcher has slots, each
    in its own process: `python -m bench train` with `child_arguments(run, device, share)`, or with `--array`, the
    seeds of a spec together (`arrays`), one process with `--seeds N`. Ctrl-C or a stopping
    signal asks the children in flight to record `interrupted` and returns what was done (`stopped_by`)."""
    result = SuiteResult()
    todo, done_share = [], {}
    for run in planned:
        record = records.RunRecord(results_dir, run.run_id)
        status = record.status()
        if status in records.DONE:
            result.skipped.append(run)
            if status == "diverged":
                result.diverged.append(run)
        else:
            todo.append(run)
            done_share[run.run_id] = _resumes_at(record.summary())
    where = "" if launcher.name == "local" else f" on {launcher.name}"
    recipe = f"recipe {planned[0].run.recipe.name} x{planned[0].run.recipe.scale:g}, " if planned else ""
    resuming = [share for share in done_share.values() if share]
    resumes = (f", {len(resuming)} of them resuming where they stopped ({_shares(resuming)} done)"
               if resuming else "")
    size = array_size(array, launcher.slots[0]) if launcher.slots else 1
    units = arrays(todo, size)
    processes = f"{len(units)} training process" + ("es" if len(units) > 1 else "")
    together = f", as {processes} (arrays of up to {size} seeds)" if len(units) < len(todo) else ""
    print(f"suite {suite.name}: {len(planned)} runs, {len(result.skipped)} already done, {len(todo)} to train"
          f"{resumes} ({recipe}{len(launcher.slots)} at a time{where}{together})")
    if not todo:
        return result
    # Once, here: a missing dataset is one clear error (or one download, one cache to build), not one per run
    # or a race of jobs.
    data = source.load(suite.dataset, replace(todo[0].run.recipe.inputs, val_size=0))
    estimate = _CostEstimate(todo, data.num_classes, data.image_size, done_share)
    print(_forecast(todo, data, estimate, launcher), flush=True)
    launcher.prepare(Path(results_dir))
    scheduler = Scheduler(suite, units, launcher, Path(results_dir), child_arguments, result, estimate)
    scheduler.run()
    return result


class Scheduler:
    """The suite's loop: keep every slot of the launcher busy with a run (or an array of a spec's seeds: a
    unit, one child), settle each run as its child ends,
    and wait for the runs that another process (another suite, another terminal) trains right now: their
    outcome is taken from their record once they end, and a run whose holder died is trained here, resuming.
    Each attempt's log gets a header naming the process that started it; attempts append, never overwrite."""

    WAIT_POLL = 2.0  # seconds between looks at the runs another process trains

    def __init__(self, suite: Suite, units: list[list[PlannedRun]], launcher: Launcher, results_dir: Path,
                 child_arguments: Callable[[Run, str, float], list[str]], result: SuiteResult,
                 estimate: "_CostEstimate"):
        self.suite, self.launcher, self.results_dir = suite, launcher, results_dir
        self.child_arguments, self.result, self.estimate = child_arguments, result, estimate
        self.total = sum(len(unit) for unit in units)
        self.queue = list(units)
        self.running: dict[int, tuple[Job, list[PlannedRun], float]] = {}  # slot: (job, its runs, start)
        self.waiting: dict[str, tuple[PlannedRun, str]] = {}  # run id: (run, its holder)
        self.done = 0
        self.logs = records.within(results_dir / "suites", suite.name, "logs")
        with records.no_space_is(self.logs, None, "the suite's logs"):
            self.logs.mkdir(parents=True, exist_ok=True)
        self.started = self.last_progress = self.last_look = time.monotonic()

    def run(self) -> None:
        try:
            while self.queue or self.running or self.waiting:
                for slot, device in enumerate(self.launcher.slots):
                    if slot not in self.running and self.queue:
                        self.start(slot, device, self.queue.pop(0))
                time.sleep(0.2)
                for slot in list(self.running):
                    returncode = self.running[slot][0].poll()
                    if returncode is not None:
                        self.settle(slot, returncode)
                if self.waiting and time.monotonic() - self.last_look >= self.WAIT_POLL:
                    self.look_at_waiting()
                if (self.running or self.waiting) and time.monotonic() - self.last_progress >= PROGRESS_EVERY:
                    self.last_progress = time.monotonic()
                    for _, unit, started in self.running.values():
                        for run in unit:
                            print(f"    {_progress_line(self.results_dir, run, time.monotonic() - started)}",
                                  flush=True)
                    for run, holder in self.waiting.values():
                        print(f"    {run.spec} seed {run.seed}: trained by {holder}; waiting", flush=True)
        except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM, SIGHUP: later signals let this finish (stopping.py)
            self.result.stopped_by = stop
            if self.running:
                print(f"\nstopping: {len(self.running)} training process(es) record where they are", flush=True)
        finally:
            _stop([job for job, _, _ in self.running.values()])
        self.result.interrupted += [run for _, unit, _ in self.running.values() for run in unit]
        self.result.waiting += [run for run, _ in self.waiting.values()]

    def start(self, slot: int, device: str, unit: list[PlannedRun]) -> None:
        free = []
        for run in unit:
            holder = records.RunRecord(self.results_dir, run.run_id).holder()
            if holder is not None:  # trained elsewhere right now: no child of ours would get its lock
                self.wait_for(run, holder)
            else:
                free.append(run)
        if not free:
            return
        if [run.seed for run in free] != list(range(free[0].seed, free[0].seed + len(free))):
            self.queue[:0] = [[run] for run in free[1:]]  # a gap in the seeds: the others alone, next
            free = free[:1]
        run = free[0]
        log = self.log_of(free)
        with records.no_space_is(self.logs, None, "a training log"), open(log, "a") as handle:
            handle.write(f"==== {_now()}: suite {self.suite.name}, {socket.gethostname()} pid {os.getpid()}, "
                         f"device {device} ====\n")
        command = [sys.executable, "-m", "bench", "train",
                   *self.child_arguments(run.run, device, self.launcher.shares[slot])]
        if len(free) > 1:
            command += ["--seeds", str(len(free))]
        with stopping.deferred():  # a child started is a child counted, so that a stop stops it
            self.running[slot] = (self.launcher.submit(command, log), free, time.monotonic())
        seeds = f"seeds {', '.join(str(r.seed) for r in free)} as one array" if len(free) > 1 else f"seed {run.seed}"
        print(f"[{self.done}/{self.total}] start {run.spec} {seeds} on {device} ({', '.join(run.experiments)})",
              flush=True)

    def log_of(self, unit: list[PlannedRun]) -> Path:
        """A child's log: its first run's (an array's seeds all write there)."""
        return self.logs / f"{unit[0].run_id}.log"

    def settle(self, slot: int, returncode: int) -> None:
        with stopping.deferred():
            self._settle(slot, returncode)

    def _settle(self, slot: int, returncode: int) -> None:
        job, unit, started = self.running.pop(slot)
        if returncode == records.EXIT_HELD:  # another process took a run between our look and the child's
            for run in unit:
                holder = records.RunRecord(self.results_dir, run.run_id).holder()
                if holder is not None or len(unit) == 1:
                    self.wait_for(run, holder or "another process")
                elif records.RunRecord(self.results_dir, run.run_id).status() not in records.DONE:
                    self.queue.insert(0, [run])
            return
        seconds = time.monotonic() - started
        for run in unit:
            # an array's seeds share its time: each run's share of it is what the ETA counts
            self.settle_run(run, returncode, seconds, seconds / len(unit), self.log_of(unit))

    def settle_run(self, run: PlannedRun, returncode: int, seconds: float, share: float, log: Path) -> None:
        self.done += 1
        status = _settle(self.results_dir, run, returncode, log)
        {"finished": self.result.finished, "diverged": self.result.diverged}.get(status, self.result.failed).append(run)
        summary = records.RunRecord(self.results_dir, run.run_id).summary() or {}
        resumed = self.estimate.done_share.get(run.run_id, 0.0)
        self.estimate.record(run, share, summary)
        detail = f"test error {summary['test_error']:.2f}%" if summary.get("test_error") is not None else \
            f"see {log}"
        left = [r for unit in self.queue for r in unit] + [r for _, unit, _ in self.running.values() for r in unit]
        eta = self.estimate.remaining(left, len(self.launcher.slots))
        if resumed:
            detail += f"; resumed at {100 * resumed:.0f}% of its iterations"
        print(f"[{self.done}/{self.total}] {status} {run.spec} seed {run.seed} in {seconds:.0f} s ({detail}); "
              f"elapsed {duration(time.monotonic() - self.started)}, ETA {eta}", flush=True)

    def wait_for(self, run: PlannedRun, holder: str) -> None:
        self.waiting[run.run_id] = (run, holder)
        print(f"[{self.done}/{self.total}] {run.spec} seed {run.seed} is being trained elsewhere ({holder}); "
              f"waiting for it, training the other runs meanwhile", flush=True)

    def look_at_waiting(self) -> None:
        """Take the outcome of each waited-for run once its holder has let go of it: the record's, when it ended;
        a run left unfinished (its holder stopped, failed or died) is trained here, resuming."""
        self.last_look = time.monotonic()
        for run_id, (run, holder) in list(self.waiting.items()):
            record = records.RunRecord(self.results_dir, run_id)
            if record.holder() is not None:  # still in training; its status is read once it lets go
                continue
            status = record.status()
            with stopping.deferred():
                del self.waiting[run_id]
                if status in records.DONE:
                    self.done += 1
                    self.result.elsewhere.append(run)
                    if status == "diverged":
                        self.result.diverged.append(run)
                    print(f"[{self.done}/{self.total}] {status} {run.spec} seed {run.seed} by {holder}", flush=True)
                else:
                    self.queue.insert(0, [run])
                    print(f"    {run.spec} seed {run.seed}: {holder} let go of it unfinished ({status}); training it "
                          f"here", flush=True)


def _settle(results_dir, run: PlannedRun, returncode: int, log: Path) -> str:
    """The status a finished child left; a child that died before recording anything is recorded as failed."""
    record = records.RunRecord(results_dir, run.run_id)
    status = record.status()
    if status is None:
        record.write_summary({
            "status": "failed", "run_id": run.run_id, "spec": run.spec, "seed": run.seed,
            "updated_at": _now(),
            "reason": f"the training process exited with status {returncode} before recording anything; "
                      f"see {log}",
        })
        return "failed"
    if status in ("running", "interrupted") or (returncode not in (0, 3) and status != "diverged"):
        return "failed"
    return status


def _progress_line(results_dir, run: PlannedRun, seconds: float) -> str:
    rows = records.RunRecord(results_dir, run.run_id).metrics()
    config = records.read_json(records.RunRecord(results_dir, run.run_id).config_path) or {}
    total = (config.get("recipe") or {}).get("iterations")
    if not rows or not total:
        return f"{run.spec} seed {run.seed}: starting ({seconds:.0f} s)"
    last = rows[-1]
    return (f"{run.spec} seed {run.seed}: iteration {last['iteration']:,}/{total:,}, train error "
            f"{last['train/error']:.1f}% ({seconds / 60:.1f} min so far)")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _stop(jobs: list[Job]) -> None:
    """On Ctrl-C or any error: let each child record `interrupted`, then make sure none outlives the suite."""
    for job in jobs:
        job.stop()
    for job in jobs:
        job.wait_stopped()


def _forecast(todo: list[PlannedRun], data: datasets.Data, estimate: "_CostEstimate", launcher: Launcher) -> str:
    """The suite's cost line (forecast.py): every run's images left, the first net timed on the first slot's
    device (local runs; a Ray cluster's speed is known once its first runs end)."""
    import torch

    from .execution import Execution

    works = [forecast.Work(run.spec, round((1 - estimate.done_share.get(run.run_id, 0.0)) * run.run.plan(
        len(data.train)).iterations * run.run.recipe.batch_size), estimate.work[run.spec]) for run in todo]
    first = todo[0]
    if launcher.name != "local":
        return forecast.line(works, None, estimate.work[first.spec], None)
    execution = Execution(torch.device(launcher.slots[0])).resolved()
    speed = forecast.timed_speed(lambda: variants.create(first.run.trained, num_classes=data.num_classes), data.image_size,
                                 data.num_classes, first.run.recipe.batch_size, execution, first.spec)
    # runs in parallel on a CPU share its cores; on GPUs each has its own
    parallel = len(launcher.slots) if execution.device.type == "cuda" else 1
    return forecast.line(works, speed, estimate.work[first.spec], execution.device, parallel=parallel,
                         recipe=first.run.recipe.name, scale=first.run.recipe.scale)


def _resumes_at(summary: dict | None) -> float:
    """The share of a run's iterations its next attempt starts from: its last checkpoint's (0 without one)."""
    summary = summary or {}
    at, planned = summary.get("checkpoint_iteration"), summary.get("iterations_planned")
    return at / planned if at and planned else 0.0


def _shares(shares: list[float]) -> str:
    return ", ".join(f"{100 * share:.0f}%" for share in shares[:5]) + (", ..." if len(shares) > 5 else "")


class _CostEstimate:
    """ETA from the work left and the speed measured in this invocation: a run's work is its multiply-adds
    times the share of its iterations still to train (a resumed run's last checkpoint counts as done), and
    the speed is the work this suite trained per second so far."""

    def __init__(self, runs: list[PlannedRun], num_classes: int, image_size: int, done_share: dict[str, float]):
        from .cost import measure

        self.work, self.done_share = {}, done_share
        for run in runs:
            if run.spec not in self.work:
                self.work[run.spec] = measure(run.run.trained, image_size=image_size, num_classes=num_classes).macs
        self.done_work = 0.0
        self.done_seconds = 0.0

    def left(self, run: PlannedRun) -> float:
        return self.work[run.spec] * (1 - self.done_share.get(run.run_id, 0.0))

    def record(self, run: PlannedRun, seconds: float, summary: dict) -> None:
        """A run's child ended after `seconds`: the work it trained, from where it started to where it ended."""
        planned, reached = summary.get("iterations_planned"), summary.get("iterations")
        start = self.done_share.get(run.run_id, 0.0)
        end = min(1.0, reached / planned) if planned and reached is not None else 1.0
        self.done_work += self.work[run.spec] * max(0.0, end - start)
        self.done_seconds += seconds
        self.done_share[run.run_id] = _resumes_at(summary) if summary.get("status") not in records.DONE else 1.0

    def remaining(self, runs: list[PlannedRun], jobs: int) -> str:
        if not self.done_work:
            return "unknown"
        seconds = sum(self.left(run) for run in runs) * self.done_seconds / self.done_work / jobs
        return duration(seconds)

