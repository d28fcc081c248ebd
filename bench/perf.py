"""How fast the suite trains, measured side by side with the standard PyTorch recipe (`python -m bench perf`).

A is the standard recipe (`bench.standard`: PIL images, torchvision transforms, a DataLoader with worker
processes, fp32 NCHW eager, `.item()` every step). B is the suite's own path: the runner's `TrainingPath`
with the runner's default execution (device-resident data and batched augmentation, channels_last, bf16
where the hardware runs it faster, CUDA graphs through torch.compile on CUDA). Both train the same freshly initialised model with the same batch size
and SGD settings. Measurements alternate A, B, A, B, ... within one process so that machine drift hits both
alike; each figure is the median of `repeats`.

Per spec: training images/s, data-pipeline images/s (batches ready on the device, no model), inference
images/s (A at its loader's batch size, B at the runner's evaluation batch), and peak memory. Then the cost
of W&B logging, measured on the full runner (`train.run`) with W&B offline against disabled, and how B's step
time grows with depth and with batch size: each such point the median, with its min–max range, of
`scaling_repeats` repeats of `scaling_steps` steps, the repeats interleaved across points. Everything lands
in OUT/perf.csv, OUT/perf.md and OUT/scaling.png, the Markdown naming machine, device, versions and the
command.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

import variants

from . import data as datasets
from . import recipe as recipes
from . import standard, train
from .execution import Execution, cpu_name
from .paths import ARRAY_PATHS, TrainingPath
from .errors import UserError
from .runs import Request

DEPTHS = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
          "plain20", "plain32", "plain44", "plain56", "plain110")
BATCH_SIZES = (64, 128, 256, 512, 1024)
WANDB_LOG_EVERY = 10  # ten times the paper recipe's rate, so that the measured cost is an upper bound


@dataclass
class Settings:
    specs: list[str]
    dataset: str = "cifar10"
    data_dir: str = "data"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    iters: int = 30
    warmup: int = 3
    repeats: int = 3
    batch_size: int = 128
    workers: int = 2
    depths: tuple[str, ...] = DEPTHS
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    cache_dir: str | None = None
    image_size: int = 0  # set by `run` from the data
    scaling_steps: int = 10  # timed steps per repeat of a scaling point (the CLI: 10 on CPU, 50 on CUDA)
    scaling_repeats: int = 5  # repeats per scaling point, interleaved round-robin across points
    wandb: bool = True
    threads: int = field(default_factory=torch.get_num_threads)
    out: Path = Path("results/perf")
    command: str = ""

    def validate(self) -> None:
        for name in ("iters", "repeats", "batch_size", "scaling_steps", "scaling_repeats"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)} is not allowed: it must be at least 1")
        if self.warmup < 0 or self.workers < 0:
            raise UserError("--warmup and --workers must be 0 or more")
        if any(size < 1 for size in self.batch_sizes):
            raise UserError(f"--batch-sizes {list(self.batch_sizes)}: every batch size must be at least 1")
        for spec in [*self.specs, *self.depths]:
            variants.parse(spec)  # a bad spec fails here, before anything is measured
        for spec in self.depths:
            if getattr(variants.parse(spec), "family", None) != "cifar":
                raise UserError(f"--depths {spec}: the depth series takes CIFAR-family specs (resnet20 ... "
                                f"resnet110, plain20 ... plain110, cifar(depth=N))")


@dataclass
class Row:
    """One measurement: `value` in `unit` for pipeline A (standard) or B (suite)."""

    spec: str
    metric: str
    pipeline: str
    repeat: int
    value: float
    unit: str
    batch_size: int


# ---- measuring --------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of one measured phase, in MB. CUDA: the caching allocator's peak of allocated bytes
    (reset at the start), less what was allocated at the start. CPU: the highest sampled (this process's RSS + its worker processes' unique
    memory), less this process's RSS at the start, i.e. what the phase added (see _fresh_process_peak_memory)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)  # data already resident is not this phase's
            return self
        import psutil

        self._process = psutil.Process()
        self._start = self._process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        import psutil

        beat = 0
        workers = 0
        while not self._stop.wait(0.05):
            beat += 1
            if beat % 10 == 1:  # unique memory costs a read of smaps: twice a second is enough for workers
                workers = 0
                for child in self._process.children(recursive=True):
                    try:
                        workers += child.memory_full_info().uss
                    except (psutil.Error, OSError):
                        pass
            self._peak = max(self._peak, self._process.memory_info().rss + workers)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.mb = (self._peak - self._start) / 2**20


def _timed(device: torch.device, run_steps) -> float:
    """Seconds that `run_steps()` takes, the device's queue drained at both ends."""
    _sync(device)
    started = time.perf_counter()
    run_steps()
    _sync(device)
    return time.perf_counter() - started


def _timed_training(device: torch.device, step, batches, warmup: int, iters: int) -> float:
    """Seconds for `iters` calls of `step(images, labels, lr)` on `batches`, after `warmup` untimed ones."""
    for _ in range(warmup):
        step(*next(batches), 0.1)

    def steps():
        for _ in range(iters):
            step(*next(batches), 0.1)

    return _timed(device, steps)


def _suite_batches(loader: datasets.EpochLoader):
    epoch = 0
    while True:
        yield from loader.batches(epoch)
        epoch += 1


def _recipe(s: "Settings", batch_size: int | None = None) -> recipes.Recipe:
    """The dataset's own recipe (CIFAR: the paper's; Imagenette: Bag of Tricks') at the measured batch size."""
    declared = datasets.info(s.dataset)
    return replace(recipes.get(declared.default_recipe, 1.0, declared.budget), batch_size=batch_size or s.batch_size)


def _measured(s: "Settings", spec: str, data: datasets.Data, batch_size: int | None = None):
    """What both pipelines train for `spec`: the net as the runner builds it (seed 0, as trained) and its plan."""
    run = Request(spec, s.dataset, _recipe(s, batch_size)).resolve()
    torch.manual_seed(0)
    return variants.create(run.trained, num_classes=data.num_classes), run.plan(len(data.train))


def load(s: "Settings") -> datasets.Data:
    return datasets.Source(s.data_dir, s.cache_dir, download=False).load(s.dataset, _recipe(s).inputs)


def _execution(device: torch.device) -> Execution:
    """The runner's default execution on this device: what `python -m bench train` would use."""
    return Execution(device).resolved()


def _standard_train(spec: str, data: datasets.Data, s: Settings, memory: PeakMemory | None = None) -> float:
    """A's training images/s; `memory`, when given, measures the phase's peak."""
    path = standard.StandardPath(*_measured(s, spec, data), s.device)
    batches = standard.endless(standard.loader_for(data, True, s.batch_size, s.workers, s.device))
    with memory or contextlib.nullcontext():
        seconds = _timed_training(s.device, path.step, batches, s.warmup, s.iters)
    return s.iters * s.batch_size / seconds


def _fresh_process_peak_memory(pipeline: str, spec: str, s: Settings) -> float:
    """CPU peak memory of training `spec` with `pipeline` (A or B), measured in a fresh interpreter.

    In this process, memory that an earlier phase freed stays mapped (the C allocator keeps its arenas), so
    a later phase would appear to need nothing; a fresh interpreter starts from its own imports and data, and
    its DataLoader workers start as in a user's own script. The peak comes within the first iterations, so
    a few suffice."""
    job = {"pipeline": pipeline, "spec": spec, "dataset": s.dataset, "data_dir": str(s.data_dir),
           "iters": min(s.iters, 5), "warmup": s.warmup, "batch_size": s.batch_size, "workers": s.workers,
           "threads": s.threads, "cache_dir": s.cache_dir}
    child = subprocess.run([sys.executable, "-c", "import sys, bench.perf; bench.perf._peak_memory_child(sys.argv[1])",
                            json.dumps(job)], capture_output=True, text=True, env=_child_environment())
    if child.returncode != 0:
        raise RuntimeError(f"the memory measurement of {pipeline} {spec} failed:\n{child.stderr[-2000:]}")
    return float(child.stdout.strip().splitlines()[-1])


def _child_environment() -> dict:
    root = str(Path(__file__).resolve().parent.parent)  # bench/ and variants/ importable from any directory
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def _peak_memory_child(job_json: str) -> None:
    job = json.loads(job_json)
    torch.set_num_threads(job["threads"])
    s = Settings(specs=[job["spec"]], dataset=job["dataset"], data_dir=job["data_dir"], iters=job["iters"],
                 warmup=job["warmup"], batch_size=job["batch_size"], workers=job["workers"], threads=job["threads"],
                 cache_dir=job["cache_dir"])
    data = load(s)
    peak = PeakMemory(s.device)
    if job["pipeline"] == "A":
        _standard_train(job["spec"], data, s, peak)
    else:
        path = _suite_path(job["spec"], data, s)
        with peak:
            _suite_train(path, s, s.iters)
    print(peak.mb)


def _suite_path(spec: str, data: datasets.Data, s: Settings, batch_size: int | None = None) -> TrainingPath:
    """The runner's path for `spec` on `data` (whose training split is on the device already, or is moved)."""
    model, plan = _measured(s, spec, data, batch_size)
    return TrainingPath(model, data, plan, 0, _execution(s.device))


def _suite_train(path: TrainingPath, s: Settings, iters: int) -> float:
    """Seconds per step of the runner's training step, after `s.warmup` untimed steps."""
    seconds = _timed_training(s.device, path.step, _suite_batches(path.loader), s.warmup, iters)
    path.totals()
    return seconds / iters


def _suite_model_only(path: TrainingPath, s: Settings) -> float:
    """B's training images/s on one batch made once: the model's step alone, the most any data pipeline allows."""
    images, labels = next(_suite_batches(path.loader))
    seconds = _timed_training(s.device, path.step, iter(lambda: (images, labels), None), s.warmup, s.iters)
    path.totals()
    return s.iters * s.batch_size / seconds


def _standard_data(data: datasets.Data, s: Settings, batches_count: int) -> float:
    batches = standard.endless(standard.loader_for(data, True, s.batch_size, s.workers, s.device))
    next(batches)  # workers started

    def fetch():
        for _ in range(batches_count):
            images, labels = next(batches)
            images.to(s.device, non_blocking=True), labels.to(s.device, non_blocking=True)

    return batches_count * s.batch_size / _timed(s.device, fetch)


def _suite_data(path: TrainingPath, s: Settings, batches_count: int) -> float:
    batches = _suite_batches(path.loader)
    path.inputs(next(batches)[0])

    def fetch():
        for _ in range(batches_count):
            images, _ = next(batches)
            path.inputs(images)

    return batches_count * s.batch_size / _timed(s.device, fetch)


def _standard_inference(spec: str, data: datasets.Data, s: Settings, count: int) -> float:
    path = standard.StandardPath(*_measured(s, spec, data), s.device)
    # persistent workers: the timed pass does not pay for starting them (in A's favour)
    batches = standard.loader_for(data, False, s.batch_size, s.workers, s.device, persistent=True, limit=count)
    path.evaluate(batches, limit=s.batch_size)  # warm-up: workers, kernels
    return count / _timed(s.device, lambda: path.evaluate(batches))


def _suite_inference(path: TrainingPath, test: datasets.Split, s: Settings, count: int) -> float:
    # warm-up: kernels for the evaluation batch, and CUDA graphs, recorded on the third call of a compiled model
    path.evaluate(test, limit=min(count, 3 * path.execution.eval_batch))
    return count / _timed(s.device, lambda: path.evaluate(test, limit=count))


def measure_specs(s: Settings, data: datasets.Data, say) -> list[Row]:
    rows: list[Row] = []
    placed = replace(data, train=data.train.to(s.device))  # once, not once per path
    device_test = data.test.to(s.device)
    inference_count = min(len(data.test), 2000 if s.device.type == "cpu" else 10_000)
    data_batches = max(s.iters, 50)
    eval_batch = _execution(s.device).eval_batch
    for repeat in range(1, s.repeats + 1):
        for spec in s.specs:
            def add(metric: str, pipeline: str, value: float, unit: str) -> None:
                batch = eval_batch if (metric, pipeline) == ("inference", "B") else s.batch_size
                rows.append(Row(spec, metric, pipeline, repeat, value, unit, batch))
                say(f"[{repeat}/{s.repeats}] {spec:<12} {metric:<18} {pipeline}: {value:,.1f} {unit}")

            cuda = s.device.type == "cuda"
            # on the CPU no sampler runs in the timed phases: it would compete with A for the cores
            memory_a, memory_b = (PeakMemory(s.device), PeakMemory(s.device)) if cuda else (None, None)
            add("train", "A", _standard_train(spec, data, s, memory_a), "img/s")
            path = _suite_path(spec, placed, s)
            with memory_b or contextlib.nullcontext():
                step_seconds = _suite_train(path, s, s.iters)
            add("train", "B", s.batch_size / step_seconds, "img/s")
            add("model_only", "B", _suite_model_only(path, s), "img/s")
            if cuda:  # the allocator's own peak, reset per phase: exact in this process
                add("peak_memory", "A", memory_a.mb, "MB")
                add("peak_memory", "B", memory_b.mb, "MB")
            elif repeat == 1:  # deterministic enough that one fresh process per pipeline tells it
                add("peak_memory", "A", _fresh_process_peak_memory("A", spec, s), "MB")
                add("peak_memory", "B", _fresh_process_peak_memory("B", spec, s), "MB")
            add("data", "A", _standard_data(data, s, data_batches), "img/s")
            add("data", "B", _suite_data(path, s, data_batches), "img/s")
            add("inference", "A", _standard_inference(spec, data, s, inference_count), "img/s")
            add("inference", "B", _suite_inference(path, device_test, s, inference_count), "img/s")
            del path
    return rows


def measure_wandb(s: Settings, say) -> list[Row]:
    """Train the first spec with the full runner, W&B offline against disabled (alternating), logging every
    WANDB_LOG_EVERY iterations. Two costs: steady-state throughput (the runner's per-segment img/s, first
    segment excluded, so W&B's start-up is not smeared over a short run) and the fixed seconds that starting
    and finishing W&B add to a run's wall time."""
    iterations = max(6 * WANDB_LOG_EVERY, round(2 * s.iters / WANDB_LOG_EVERY) * WANDB_LOG_EVERY)
    recipe = replace(_recipe(s), name="perf-wandb", epochs=0.0, iterations=iterations, milestones=(iterations,),
                     lr_warmup_epochs=0.0, log_every=WANDB_LOG_EVERY, checkpoint_every=iterations, eval_points=1,
                     eval_subset=1000)
    source = datasets.Source(s.data_dir, s.cache_dir, download=False)
    spec = s.specs[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as results:
        for repeat in range(1, s.repeats + 1):
            for mode in ("disabled", "offline"):
                started = time.perf_counter()
                outcome = train.run(Request(spec, s.dataset, recipe), source, results, _execution(s.device),
                                    wandb_mode=mode, force=True, quiet=True, job_type="perf")
                wall = time.perf_counter() - started
                summary = outcome.summary
                if outcome.status != "finished":
                    raise UserError(f"the W&B measurement run ended {outcome.status} ({summary.get('reason')}); "
                                    f"run again with --no-wandb to measure the rest")
                steady = summary["train_img_s"]  # after the first log segment (the runner's steady state)
                logged = 100 * summary["wandb_log_seconds"] / summary["train_seconds"]
                for metric, value, unit in ((f"wandb_{mode}", steady, "img/s"),
                                            (f"wandb_{mode}_log_share", logged, "%"),
                                            (f"wandb_{mode}_wall", wall - summary["train_seconds"], "s")):
                    rows.append(Row(spec, metric, "B", repeat, value, unit, s.batch_size))
                say(f"[{repeat}/{s.repeats}] {spec:<12} W&B {mode:<9} train {steady:,.1f} img/s, "
                    f"{logged:.2f}% of train time inside wandb.log")
        import wandb

        wandb.teardown()  # the service flushes and lets go of the folder before it is removed
        written = list(Path(results).glob("wandb/offline-run-*/run-*.wandb"))
        if not written:
            raise UserError("W&B offline mode wrote no run file, so its cost cannot be measured; run again with "
                            "--no-wandb to measure the rest")
    return rows


def _scaling_warmup(s: Settings) -> int:
    # CUDA graphs are recorded on the third call of a compiled model; eager CPU kernels are ready after one
    return min(s.warmup, 5 if s.device.type == "cuda" else 1)


def measure_scaling(s: Settings, data: datasets.Data, say) -> list[Row]:
    """Step time of B against depth (batch `s.batch_size`) and against batch size (each spec). Each point is
    measured `s.scaling_repeats` times, `s.scaling_steps` timed steps each; the repeats go round-robin across
    the points (repeat 1 of every point, then repeat 2 of every point, ...) so that machine drift hits all
    points alike rather than whichever point it happened to fall on."""
    rows = []
    placed = replace(data, train=data.train.to(s.device))
    points = [(spec, s.batch_size, "depth") for spec in s.depths]
    points += [(spec, size, "batch") for spec in s.specs for size in s.batch_sizes if size <= len(data.train)]
    warm = replace(s, warmup=_scaling_warmup(s))
    for repeat in range(1, s.scaling_repeats + 1):
        for spec, size, axis in points:
            # A fresh path per (point, repeat), warmed up each time, rather than one per point kept alive
            # across repeats: memory stays that of one path (on CUDA each live path would hold its recorded
            # CUDA graphs and buffers, up to batch 1024, for the whole phase), and each repeat includes what a
            # rerun of the command varies (allocations, kernel choice), so the spread is that of independent
            # measurements. The price is one build and the warm-up steps per repeat, untimed.
            path = _suite_path(spec, placed, s, batch_size=size)
            seconds = _suite_train(path, warm, s.scaling_steps)
            rows.append(Row(spec, f"step_ms_by_{axis}", "B", repeat, 1000 * seconds, "ms", size))
            say(f"[{repeat}/{s.scaling_repeats}] scaling {spec:<12} batch {size:>5}: {1000 * seconds:,.1f} ms/step")
            del path
    return rows


# ---- writing ----------------------------------------------------------------------------------------------

def _frame(rows: list[Row]):
    import pandas as pd

    return pd.DataFrame([row.__dict__ for row in rows])


def _median(frame, spec: str, metric: str, pipeline: str) -> float:
    values = frame[(frame.spec == spec) & (frame.metric == metric) & (frame.pipeline == pipeline)].value
    return statistics.median(values) if len(values) else float("nan")


def _ratio(b: float, a: float) -> str:
    return f"{b / a:.2f}x" if a > 0 else "-"


def _standard_words(data: datasets.Data) -> str:
    steps = " + ".join(_transform_words(step) for step in standard.transform(data, train=True).transforms)
    return f"{data.reader.standard_words}, {steps}"


def _transform_words(step) -> str:
    """A torchvision transform as the table names it: RandomCrop(32, padding=4), ToTensor, ..."""
    if type(step).__name__ == "RandomCrop":
        return f"RandomCrop({step.size[0]}, padding={step.padding})"
    return type(step).__name__


def _compile_words(execution: Execution) -> str:
    return "eager" if execution.compile == "off" else f"torch.compile {execution.compile}"


def _machine(s: Settings) -> dict:
    import torchvision

    execution = _execution(s.device)
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_name()}, {standard.default_workers()} cores usable, {platform.system()}",
        "device": execution.describe()["device_name"] + f" ({s.device})",
        "versions": f"Python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}",
        "suite_execution": f"{execution.precision}, {'channels_last' if execution.channels_last else 'NCHW'}, "
                           f"{_compile_words(execution)}, {torch.get_num_threads()} threads",
    }


def markdown(frame, s: Settings, data: datasets.Data) -> str:
    machine = _machine(s)
    lines = [
        "# Training speed: the suite (B) against the standard PyTorch recipe (A)",
        "",
        f"- Date: {machine['date']}",
        f"- Machine: {machine['machine']}",
        f"- Device: {machine['device']}",
        f"- Versions: {machine['versions']}",
        f"- Command: `{s.command}`",
        f"- Dataset: {s.dataset}" + (f" at {s.image_size}x{s.image_size}" if s.image_size else "") + ".",
        f"- A: {_standard_words(data)}, DataLoader with {s.workers} worker processes, fp32 NCHW eager, `.item()` each "
        "step.",
        f"- B: the runner's training path: data on the device, batched augmentation, {machine['suite_execution']}. "
        "B's model step alone, on one batch made once, is the ceiling that no data pipeline can pass (below "
        "the table).",
        f"- Batch {s.batch_size}, SGD momentum 0.9, weight decay 1e-4 for both; {s.iters} timed iterations after "
        f"{s.warmup} warm-up ones; median of {s.repeats} repeats, A and B alternating.",
        "- Data: batches ready on the device, no model (A: loader workers + copy to the device; B: augmentation and "
        "normalisation on the device). Inference: A at its loader's batch size, B at the runner's evaluation batch "
        f"({_execution(s.device).eval_batch}). Peak memory: " + (
            "CUDA allocator peak during training." if s.device.type == "cuda" else
            "memory the training phase added (process RSS plus loader workers' unique memory, sampled), each "
            "pipeline measured once in a fresh process after its data is loaded."),
        "",
        "| spec | measure | A (standard) | B (suite) | B/A |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    labels = {"train": "train img/s", "data": "data pipeline img/s", "inference": "inference img/s",
              "peak_memory": "peak memory MB"}
    for spec in s.specs:
        for metric, label in labels.items():
            a, b = _median(frame, spec, metric, "A"), _median(frame, spec, metric, "B")
            lines.append(f"| {spec} | {label} | {a:,.0f} | {b:,.0f} | {_ratio(b, a)} |")
    lines.append("")
    for spec in s.specs:
        a, b = _median(frame, spec, "train", "A"), _median(frame, spec, "train", "B")
        ceiling = _median(frame, spec, "model_only", "B")
        lines.append(f"Ceiling for {spec}: B's model step alone trains at {ceiling:,.0f} img/s, {_ratio(ceiling, a)} "
                     f"A's training: the most any data pipeline could give B. B reaches {_ratio(b, a)}, "
                     f"{100 * b / ceiling:.0f}% of its ceiling.  ")
    if s.wandb:
        spec = s.specs[0]
        disabled, offline = _median(frame, spec, "wandb_disabled", "B"), _median(frame, spec, "wandb_offline", "B")
        share = _median(frame, spec, "wandb_offline_log_share", "B")
        fixed = _median(frame, spec, "wandb_offline_wall", "B") - _median(frame, spec, "wandb_disabled_wall", "B")
        slower = 100 * (1 - offline / disabled) if disabled > 0 else float("nan")
        lines += [
            "",
            f"## Cost of W&B logging ({spec}, full runner, logging every {WANDB_LOG_EVERY} iterations)",
            "",
            "| W&B | train img/s (steady state, median) | time inside wandb.log |",
            "| --- | ---: | ---: |",
            f"| disabled | {disabled:,.0f} | - |",
            f"| offline | {offline:,.0f} | {share:.2f}% |",
            "",
            f"Offline W&B costs {share:.2f}% of training time inside `wandb.log`; between log calls the "
            f"throughput was {abs(slower):.1f}% {'lower' if slower >= 0 else 'higher (noise)'} with it (W&B's "
            f"service process shares the machine): {share + max(slower, 0):.1f}% in all, at ten times the paper "
            f"recipe's logging rate. Starting and finishing the W&B run "
            + (f"adds {fixed:.1f} s to a run, once" if fixed > 0 else f"adds no measurable time ({fixed:.1f} s)")
            + " (the W&B service already running).",
        ]
    depth = frame[frame.metric == "step_ms_by_depth"]
    batch = frame[frame.metric == "step_ms_by_batch"]
    warmup = _scaling_warmup(s)
    method = [f"Each point is {s.scaling_repeats} repeat{'s' if s.scaling_repeats != 1 else ''} of "
              f"{s.scaling_steps} timed step{'s' if s.scaling_steps != 1 else ''} (a fresh model each repeat, after "
              f"{warmup} warm-up step{'s' if warmup != 1 else ''}), the repeats interleaved round-robin across all "
              "points so that machine drift hits them alike. Cells: the median ms/step over the repeats and, in "
              "brackets, its range (min–max) over the repeats; img/s is the batch size over the median. Where the "
              "residual and the plain net's ranges overlap, their difference is within noise; elsewhere the "
              "comparison is the ratio of medians.", ""]
    if len(depth):
        lines += ["", f"## B's step time against depth (batch {s.batch_size})", "", *method,
                  "| depth | residual ms/step | plain ms/step | plain against residual |",
                  "| ---: | ---: | ---: | --- |"]
        for d, (residual, plain) in depth_series(frame).items():
            lines.append(f"| {d} | {_spread_cell(residual)} | {_spread_cell(plain)} | "
                         f"{noise_verdict(residual, plain)} |")
    if len(batch):
        specs = list(dict.fromkeys(batch.spec))
        lines += ["", "## B's step time against batch size", "", *([] if len(depth) else method),
                  "| batch | " + " | ".join(f"{spec} ms/step | {spec} img/s" for spec in specs) + " |",
                  "| ---: | " + " | ".join("---: | ---:" for _ in specs) + " |"]
        for size in sorted(set(batch.batch_size)):
            cells = []
            for spec in specs:
                values = [float(v) for v in batch[(batch.spec == spec) & (batch.batch_size == size)].value]
                ms = statistics.median(values) if values else None
                cells.append(f"{_spread_cell(values)} | {_cell(size / ms * 1000 if ms else None, 0)}")
            lines.append(f"| {size} | " + " | ".join(cells) + " |")
    if len(depth) or len(batch):
        lines += ["", "![step time against depth and batch size](scaling.png)"]
    return "\n".join(lines) + "\n"


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _spread_cell(values: list[float], digits: int = 1) -> str:
    """`median (min–max)` of the repeats, e.g. `1,104.2 (1,014.0–1,276.3)`; `-` when there are none."""
    if not values:
        return "-"
    return (f"{statistics.median(values):,.{digits}f} "
            f"({min(values):,.{digits}f}–{max(values):,.{digits}f})")


def depth_series(frame) -> dict[int, tuple[list[float], list[float]]]:
    """Per depth of the depth series (ascending): the repeats' ms/step of the residual net and of the plain one."""
    series: dict[int, tuple[list[float], list[float]]] = {}
    for row in frame[frame.metric == "step_ms_by_depth"].itertuples():
        spec = variants.parse(row.spec)
        series.setdefault(spec.depth, ([], []))[1 if spec.plain else 0].append(float(row.value))
    return dict(sorted(series.items()))


def noise_verdict(residual: list[float], plain: list[float]) -> str:
    """Plain against residual at one depth: `within noise` where the two min–max ranges over the repeats
    overlap, else `plain N% slower` / `plain N% faster` from the ratio of medians; `-` without both."""
    if not residual or not plain:
        return "-"
    if min(residual) <= max(plain) and min(plain) <= max(residual):
        return "within noise"
    change = 100 * (statistics.median(plain) / statistics.median(residual) - 1)
    words = f"plain {abs(change):.{0 if abs(change) >= 1 else 1}f}% {'slower' if change > 0 else 'faster'}"
    return words if min(len(residual), len(plain)) > 1 else words + " (1 repeat: spread unknown)"


def depth_verdicts(frame) -> dict[int, str]:
    """`noise_verdict` per depth of the depth series."""
    return {d: noise_verdict(residual, plain) for d, (residual, plain) in depth_series(frame).items()}


def plot(frame, path: Path, s: Settings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    depth = frame[frame.metric == "step_ms_by_depth"].copy()
    batch = frame[frame.metric == "step_ms_by_batch"].copy()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    # each point: the median of the repeats, its error bar the range (min–max) over them
    spread = dict(marker="o", estimator="median", errorbar=("pi", 100), err_style="bars", err_kws={"capsize": 3})
    if len(depth):
        depth["depth"] = [variants.parse(spec).depth for spec in depth.spec]
        depth["net"] = ["plain" if variants.parse(spec).plain else "residual" for spec in depth.spec]
        nets = [net for net in ("residual", "plain") if net in set(depth.net)]
        # residual a little left of its depth and plain a little right, so that their error bars do not hide
        # each other; the ticks stay at the depths
        nudge = 0.008 * (max(depth.depth) - min(depth.depth) or 100)
        depth["x"] = depth.depth + [nudge if net == "plain" else -nudge for net in depth.net]
        sns.lineplot(depth, x="x", y="value", hue="net", hue_order=nets, ax=axes[0], **spread)
        noise = [d for d, verdict in depth_verdicts(frame).items() if verdict == "within noise"]
        for d in noise:  # the two ranges overlap: the gap between the medians there is not a real difference
            axes[0].annotate("≈ noise", (d, depth[depth.depth == d].value.max()), xytext=(0, 6),
                             textcoords="offset points", ha="center", va="bottom", fontsize=8, color="dimgray")
        axes[0].set(title=f"Step time against depth (batch {s.batch_size})", xlabel="layers", ylabel="ms per step")
        axes[0].set_xticks(sorted(set(depth.depth)))
        axes[0].set_ylim(bottom=0, top=1.15 * depth.value.max())  # room for the annotations
        axes[0].legend(title=None, loc="upper left")
        if noise:
            axes[0].text(0.98, 0.02, "≈ noise: residual and plain ranges overlap", transform=axes[0].transAxes,
                         ha="right", va="bottom", fontsize=8, color="dimgray")
    if len(batch):
        sns.lineplot(batch, x="batch_size", y="value", hue="spec", ax=axes[1], **spread)
        axes[1].set(xscale="log", yscale="log", title="Step time against batch size (log-log)", xlabel="batch size",
                    ylabel="ms per step")
        axes[1].minorticks_off()
        axes[1].set_xticks(sorted(set(batch.batch_size)), [str(b) for b in sorted(set(batch.batch_size))])
        # 1-2-5 ticks in plain numbers: a log axis spanning less than a decade would otherwise show one label
        axes[1].yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes[1].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:,g}"))
        axes[1].legend(title=None, loc="upper left")
    device = _execution(s.device).describe()["device_name"]
    figure.suptitle(f"resnet-bench training step ({device}): median of {s.scaling_repeats} repeats of "
                    f"{s.scaling_steps} steps, bars min–max over the repeats", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(s: Settings, say=print) -> Path:
    """Measure everything `s` asks for and write OUT/perf.csv, OUT/perf.md, OUT/scaling.png; returns perf.md."""
    s.validate()
    data = load(s)
    s.image_size = data.image_size
    if len(data.train) < max(s.batch_size, 1):
        raise UserError(f"--batch-size {s.batch_size} is larger than the {len(data.train)} training images")
    execution = _execution(s.device)
    say(f"perf on {execution.describe()['device_name']} ({s.device}): A = standard recipe with {s.workers} loader "
        f"workers, B = the suite ({execution.precision}, {'channels_last' if execution.channels_last else 'NCHW'}, "
        f"{_compile_words(execution)})")
    # Every model of the run goes through the same compiled forward: past dynamo's limit of 8 graphs per
    # function, later ones would silently run eager (the runner trains one model per process and needs none).
    with torch._dynamo.config.patch(recompile_limit=256):
        rows = measure_specs(s, data, say)
        if s.wandb:
            rows += measure_wandb(s, say)
        if s.depths or s.batch_sizes:
            rows += measure_scaling(s, data, say)
    frame = _frame(rows)
    s.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(s.out / "perf.csv", index=False)
    if s.depths or s.batch_sizes:
        plot(frame, s.out / "scaling.png", s)
    else:
        (s.out / "scaling.png").unlink(missing_ok=True)
    report = s.out / "perf.md"
    report.write_text(markdown(frame, s, data))
    return report


def command_line(argv: list[str]) -> str:
    """The command as a user would paste it back into a shell."""
    return "python -m bench " + " ".join(shlex.quote(arg) for arg in argv)


# ---- run arrays: K runs alone, one after another, against one array of K (`bench perf --array K`) ---------

ARRAY_CONDITIONS = ("alone", "fused", "in-turn")  # the runs alone one after another, then each array mode


def _condition(mode: str, size: int) -> str:
    """The CSV's pipeline column: "3 alone", "fused array of 3", "in-turn array of 3"."""
    return f"{size} alone" if mode == "alone" else f"{mode} array of {size}"


def _array_paths(spec: str, data: datasets.Data, s: Settings, size: int) -> dict:
    """By condition: K runs alone (seeds 0..K-1, each its own net and SGD), and one array of the same K seeds in
    each mode (fused: paths.ArrayPath; in turn: paths.InTurnPath)."""
    run = Request(spec, s.dataset, _recipe(s)).resolve()
    plan = run.plan(len(data.train))

    def net(seed: int):
        torch.manual_seed(seed)
        return variants.create(run.trained, num_classes=data.num_classes)

    seeds = tuple(range(size))
    execution = _execution(s.device)
    paths = {"alone": [TrainingPath(net(seed), data, plan, seed, execution) for seed in seeds]}
    for mode in ARRAY_CONDITIONS[1:]:
        paths[mode] = [ARRAY_PATHS[mode]([net(seed) for seed in seeds], data, plan, seeds, execution)]
    return paths


def _array_train(path, s: Settings, iters: int) -> float:
    """Seconds for `iters` steps of every seed of `path` (an array, or a run alone: an array of one)."""
    streams = [_suite_batches(loader) for loader in path.loaders]
    lrs = [0.1] * len(streams)
    for _ in range(s.warmup):
        path.train_step([next(stream) for stream in streams], lrs)

    def steps():
        for _ in range(iters):
            path.train_step([next(stream) for stream in streams], lrs)

    seconds = _timed(s.device, steps)
    path.seed_totals()
    return seconds


class GpuUtilization:
    """The mean share of time the GPU was running a kernel during one phase, in percent (NVML's utilisation,
    sampled every 50 ms through torch.cuda.utilization); NaN on the CPU or where NVML is not at hand."""

    def __init__(self, device: torch.device):
        self.device, self.percent, self._samples = device, float("nan"), []

    def __enter__(self) -> "GpuUtilization":
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
            except Exception:  # no pynvml / NVML: the figure is left out, the timing goes on
                return self
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self._samples.append(torch.cuda.utilization(self.device))

    def __exit__(self, *exc) -> None:
        if hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join()
            if self._samples:
                self.percent = sum(self._samples) / len(self._samples)


def measure_arrays(s: Settings, data: datasets.Data, sizes: list[int], say) -> list[Row]:
    """Per spec and array size K, alternating within one process: K runs alone trained one after another
    (each `iters` steps), then one array of K fused and one in turn (`iters` steps of all K each): aggregate
    training img/s, each phase's peak memory and, on CUDA, its GPU utilisation."""
    placed = replace(data, train=data.train.to(s.device))
    rows = []
    for spec in s.specs:
        for size in sizes:
            conditions = _array_paths(spec, placed, s, size)
            images = size * s.iters * s.batch_size
            for repeat in range(s.repeats):
                speeds = []
                for mode, paths in conditions.items():
                    condition = _condition(mode, size)
                    with PeakMemory(s.device) as memory, GpuUtilization(s.device) as busy:
                        seconds = sum(_array_train(path, s, s.iters) for path in paths)
                    rows += [Row(spec, "train_img_s", condition, repeat, images / seconds, "img/s", s.batch_size),
                             Row(spec, "peak_memory_mb", condition, repeat, memory.mb, "MB", s.batch_size),
                             Row(spec, "gpu_util", condition, repeat, busy.percent, "%", s.batch_size)]
                    speeds.append(f"{condition} {images / seconds:,.0f} img/s")
                say(f"  {spec} repeat {repeat + 1}/{s.repeats}: " + ", ".join(speeds))
            del conditions
    return rows


def array_markdown(frame, s: Settings, sizes: list[int]) -> str:
    machine = _machine(s)
    cuda = s.device.type == "cuda"
    names = ", ".join(map(str, sizes))
    lines = [f"# Run arrays: K runs alone against one array of K, fused and in turn, K = {names} "
             f"({machine['device']})", "",
             f"{machine['date']}; {machine['machine']}; {machine['versions']}; {machine['suite_execution']}.", "",
             f"Command: `{s.command}`", "",
             f"In one process, alternating: K runs alone (seeds 0..K-1, each its own net, SGD and data stream) "
             f"trained one after another for {s.iters} steps each, then one array of the same K seeds fused "
             f"(paths.ArrayPath: vmap over stacked weights, a learning rate per seed) and one in turn "
             f"(paths.InTurnPath: each seed's own net, one after another in each step) for {s.iters} steps each, "
             f"after {s.warmup} untimed steps each; batch {s.batch_size} per seed; the median of {s.repeats} "
             f"repeats. Aggregate img/s counts every seed's images. Peak memory: " +
             ("the CUDA allocator's peak above what was allocated before the phase. GPU utilisation: NVML's share "
              "of time a kernel ran, sampled every 50 ms (n/a without NVML)." if cuda
              else "the process's RSS peak above its start (the nets and their data, not reset between phases: "
                   "a rough figure on the CPU)."), "",
             "| spec | K | K alone img/s | fused img/s | fused / alone | in turn img/s | in turn / alone | "
             "K alone peak MB | fused peak MB | in turn peak MB |"
             + (" K alone GPU util % | fused GPU util % | in turn GPU util % |" if cuda else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if cuda else "")]

    def cell(value, form="{:,.0f}"):
        return "n/a" if value != value else form.format(value)

    for spec in s.specs:
        for size in sizes:
            alone, fused, in_turn = (_condition(mode, size) for mode in ARRAY_CONDITIONS)
            speed = {condition: _median(frame, spec, "train_img_s", condition) for condition in (alone, fused, in_turn)}
            line = (f"| {spec} | {size} | {speed[alone]:,.0f} | {speed[fused]:,.0f} | {speed[fused] / speed[alone]:.2f}x"
                    f" | {speed[in_turn]:,.0f} | {speed[in_turn] / speed[alone]:.2f}x | "
                    + " | ".join(cell(_median(frame, spec, "peak_memory_mb", c)) for c in (alone, fused, in_turn))
                    + " |")
            if cuda:
                line += " " + " | ".join(cell(_median(frame, spec, "gpu_util", c)) for c in (alone, fused, in_turn)) + " |"
            lines.append(line)
    return "\n".join(lines) + "\n"


def run_arrays(s: Settings, sizes: list[int], say=print) -> Path:
    """`bench perf --array K[,K...]`: OUT/array.csv and OUT/array.md; returns array.md."""
    s.validate()
    if not sizes or min(sizes) < 1:
        raise UserError(f"--array {','.join(map(str, sizes))} is not allowed: each size must be at least 1")
    data = load(s)
    s.image_size = data.image_size
    say(f"perf --array {','.join(map(str, sizes))} on {_execution(s.device).describe()['device_name']} ({s.device})")
    frame = _frame(measure_arrays(s, data, sizes, say))
    s.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(s.out / "array.csv", index=False)
    written = s.out / "array.md"
    written.write_text(array_markdown(frame, s, sizes))
    return written
