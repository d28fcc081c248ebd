"""Train one variant on a dataset with a recipe (the paper's CIFAR §4.2 or ImageNet §3.4, Bag of Tricks'),
recording everything a comparison needs; or several seeds of it at once, as one run array (paths.py: fused
on a GPU, in turn on the CPU), each seed still its own run with the id, records and W&B run it has alone.

`run()` takes a resolved run (runs.py) and decides what to do with its id: skip a finished run, resume an
interrupted one, start afresh; `run_seeds()` does the same for the seeds of one run, training those that start
from the same iteration together. `Trainer.fit()` is the loop itself, top to bottom: set each seed's lr from
the schedule, take its augmented batch from the device-resident data, step SGD, and at log points (the only
host syncs) record the curves, evaluate, checkpoint. A NaN/inf loss ends a run as `diverged` (in an array its
seed stops changing and the others go on); an exception ends it as `failed`; Ctrl-C as `interrupted`. Each
keeps what was recorded, and the next call resumes from the last checkpoint. The records and W&B describe the
net as trained (`Run.trained`: a recipe's zero-gamma included), under the run id and name of the request.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import platform
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

import variants

from . import data as datasets
from . import recipe as recipes
from . import distributed, forecast, provenance, records
from .cost import model_cost
from .errors import OutOfSpace, UserError, free_bytes, megabytes
from .execution import Execution, resolve_device, use_compile_cache
from .paths import TrainingPath, array_path
from .progress import Progress
from .runs import Request, Run
from .tracking import Tracker, default_mode, warn


@dataclass
class Outcome:
    run_id: str
    record: records.RunRecord
    status: str
    skipped: bool = False

    @property
    def summary(self) -> dict:
        return self.record.summary() or {}


def run(request: Run | Request, source: datasets.Source = datasets.Source(), results_dir: str | Path = "results",
        execution: Execution | None = None, *, wandb_mode: str | None = None, force: bool = False,
        quiet: bool = False, job_type: str = "train", world: distributed.World | None = None) -> Outcome:
    """Train a run unless a finished record of it exists; resume it if an unfinished one does.

    `source` says where the dataset is read from, `results_dir` where the records go. Under torchrun (`world`,
    from the environment by default) this process is one rank of a data-parallel run: rank 0 decides, records
    and reports; every rank trains its share (distributed.py). `job_type` is the W&B run's job type: train, or
    perf for the runs `bench perf` times (tracking.py)."""
    started = time.perf_counter()
    resolved = request.resolve() if isinstance(request, Request) else request
    world = world or distributed.World.from_environment()
    execution = execution or Execution(resolve_device("auto"))
    execution = replace(execution, device=world.device(execution.device), world_size=world.size).resolved()
    world.share(resolved.recipe.batch_size)
    with distributed.session(world, execution.device) as group:
        try:
            (outcome,) = _attempt([resolved], source, Path(results_dir), execution, group, started, force=force,
                                  wandb_mode=wandb_mode, quiet=quiet or not world.main, job_type=job_type)
            return outcome
        except BaseException as error:
            if group is None:
                raise
            if not world.main:
                group.fail(error)
                raise
            verdict = group.judge(error)
            if verdict is None:
                raise
            status, reason = verdict
            if status == "interrupted":
                raise distributed.Stopped(reason) from error
            raise distributed.RankLost(f"run {resolved.run_id} failed: {reason}; run the same command again to "
                                       f"resume") from error


COMPILE_CACHE_FOLDER = ".compile-cache"  # under the results folder: torch.compile's caches (execution.py)


def run_seeds(request: Run | Request, seeds: int | list[int], source: datasets.Source = datasets.Source(),
              results_dir: str | Path = "results", execution: Execution | None = None, *,
              wandb_mode: str | None = None, force: bool = False, quiet: bool = False,
              array: int = 0) -> list[Outcome]:
    """The seeds `seeds` (N: 0..N-1) of one run, each with the record and run id it has alone, trained as run
    arrays of at most `array` seeds (0: all of them; 1: one after another, alone). Finished and diverged seeds
    are left as they are; the seeds that resume from the same iteration train together. In one process, on
    one device: not under torchrun."""
    started = time.perf_counter()
    resolved = request.resolve() if isinstance(request, Request) else request
    chosen = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not chosen:
        raise UserError("--seeds 0 is not allowed: it must be at least 1")
    if distributed.World.from_environment().parallel:
        raise UserError("--seeds trains an array in one process; under torchrun train one seed at a time (--seed)")
    execution = (execution or Execution(resolve_device("auto"))).resolved()
    return _attempt([resolved.with_seed(seed) for seed in chosen], source, Path(results_dir), execution, None,
                    started, force=force, wandb_mode=wandb_mode, quiet=quiet, job_type="train",
                    array=array or len(chosen))


def _attempt(runs: list[Run], source: datasets.Source, results_dir: Path, execution: Execution,
             group: distributed.Session | None, started: float, *, force: bool, wandb_mode: str | None,
             quiet: bool, job_type: str, array: int = 1) -> list[Outcome]:
    """One attempt at the seeds `runs` of one run: skip those done, else read the data once, take each run's
    lock, and train those that resume from the same point together (arrays of at most `array`)."""
    world = group.world if group else distributed.SOLO
    if execution.compile != "off":  # one cache for every process of a suite, wherever its temp directory is
        execution = replace(execution, compile_cache=use_compile_cache(results_dir / COMPILE_CACHE_FOLDER))

    def from_rank0(value):
        """What rank 0 decided, on every rank (a single process: the value itself)."""
        return group.broadcast(value) if group else value

    say = (lambda *_: None) if quiet else print
    outcomes, todo = {}, []
    for run in runs:
        record = records.RunRecord(results_dir, run.run_id) if world.main else records.Unwritten(results_dir, run.run_id)
        status = from_rank0(None if force or not world.main else record.status())
        if status in records.DONE:
            say(f"run {run.run_id} is already {status}; nothing to do (records: {record.dir}; --force to redo)")
            outcomes[run.run_id] = Outcome(run.run_id, record, status, skipped=True)
        else:
            todo.append((run, record))
    if not todo:
        return [outcomes[run.run_id] for run in runs]

    first = todo[0][0]
    if group and not world.main:
        group.barrier()  # rank 0 downloads and decodes the data first; the others then read its cache
    data = source.load(first.request.dataset, first.recipe.inputs, say=None if not quiet else lambda _: None)
    if group and world.main:
        group.barrier()
    if len(data.train) < first.recipe.batch_size:
        raise datasets.DataError(f"batch size {first.recipe.batch_size} is larger than the {len(data.train)} "
                                 f"training images")
    plan = first.plan(len(data.train))
    # decided once, recorded, and what the training split does; either way the batches are the same (loader.py).
    # The evaluation splits are placed as asked (auto: each where it fits).
    requested = execution.placement
    execution = replace(execution, placement="resident" if datasets.loader.resident(
        data.train, execution.device, requested, execution.device_share) else "stream")
    with contextlib.ExitStack() as held:
        for _, record in todo:
            if world.main:
                held.enter_context(record.lock())
            if force:  # only now: a forced run that cannot even load its data keeps the old record
                record.clear()
        starts = [(run, record, from_rank0(record.load_checkpoint() if world.main else None)) for run, record in todo]
        for together in _cohorts(starts, array, data, plan, execution):
            context = _Context(data, plan, execution, source, results_dir, group, started, quiet, job_type,
                               wandb_mode, requested)
            for outcome in _train_together(together, context):
                outcomes[outcome.run_id] = outcome
    return [outcomes[run.run_id] for run in runs]


def _cohorts(starts: list[tuple], array: int, data: datasets.Data, plan: recipes.Plan,
             execution: Execution) -> list[list[tuple]]:
    """The seeds that train together: those resuming from the same iteration (and measuring their curves
    the same way), at most `array` at a time, and on CUDA as many as fit in its memory. A net with random
    layers (dropout) trains alone: an array could not draw the masks its run alone draws, so its results
    would differ."""
    if len(starts) > 1 and array > 1 and _has_random_layers(starts[0][0], data):
        warn(f"{starts[0][0].canonical} has random layers (dropout): its seeds train one after another, not as an "
             f"array, so that each equals its run alone")
        array = 1
    if len(starts) > 1 and array > 1 and execution.device.type == "cuda":
        fits = _seeds_that_fit(starts[0][0], data, plan, execution, min(array, len(starts)))
        if fits < min(array, len(starts)):
            warn(f"{fits} seeds of {starts[0][0].canonical} fit in this run's share of the GPU's memory at once, not "
                 f"{min(array, len(starts))}: arrays of {fits}")
        array = fits
    by_start: dict[str, list[tuple]] = {}
    for start in starts:
        checkpoint = start[2]
        key = json.dumps([checkpoint["iteration"], checkpoint.get("evaluation")] if checkpoint else [0, None])
        by_start.setdefault(key, []).append(start)
    return [same[i:i + array] for same in by_start.values() for i in range(0, len(same), max(1, array))]


ARRAY_MEMORY_SHARE = 0.8  # of the run's memory budget (less a resident training split) an array may plan to fill


def array_capacity(free_bytes: int, per_seed_bytes: int, wanted: int) -> int:
    """How many of `wanted` seeds to train together when each seed's training step takes `per_seed_bytes`
    (weights, gradients, momentum and activations) and `free_bytes` are free: at least 1."""
    if per_seed_bytes <= 0:
        return wanted
    return max(1, min(wanted, int(ARRAY_MEMORY_SHARE * free_bytes // per_seed_bytes)))


def _seeds_that_fit(run: Run, data: datasets.Data, plan: recipes.Plan, execution: Execution, wanted: int) -> int:
    """On CUDA: one seed's training step measured on a twin of the net (its peak allocation), against the run's
    budget (its share of the GPU, or the free memory if less: loader.budget) less a resident training split."""
    device = execution.device
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    forecast.timed_speed(lambda: variants.create(run.trained, num_classes=data.num_classes), data.image_size,
                         data.num_classes, plan.inputs.batch_size, execution, run.canonical)
    per_seed = torch.cuda.max_memory_allocated(device) - before
    torch.cuda.empty_cache()
    resident = data.train.nbytes if execution.placement == "resident" else 0
    return array_capacity(datasets.loader.budget(device, execution.device_share) - resident, per_seed, wanted)


def _has_random_layers(run: Run, data: datasets.Data) -> bool:
    with torch.device("meta"):
        model = variants.create(run.trained, num_classes=data.num_classes)
    return any(isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0 for module in model.modules())


@dataclass(frozen=True)
class _Context:
    """What the runs of one attempt share: the data, the plan, how they execute, where they record."""

    data: datasets.Data
    plan: recipes.Plan
    execution: Execution
    source: datasets.Source
    results_dir: Path
    group: distributed.Session | None
    started: float
    quiet: bool
    job_type: str
    wandb_mode: str | None
    eval_placement: str


def _train_together(starts: list[tuple], context: _Context) -> list[Outcome]:
    """Train the runs `starts` ((run, record, checkpoint) each, from the same iteration) as one: alone, or as
    a run array of their seeds. Each gets its own config, W&B run and summary."""
    data, plan, group = context.data, context.plan, context.group
    world = group.world if group else distributed.SOLO
    say = (lambda *_: None) if context.quiet else print
    execution = context.execution
    if len(starts) > 1:
        execution = replace(execution, array_seeds=tuple(run.seed for run, _, _ in starts))
        say(f"run array of {len(starts)} seeds of {starts[0][0].canonical}, trained together in one process: "
            f"seeds {', '.join(str(run.seed) for run, _, _ in starts)}")
    models = []
    for run, record, checkpoint in starts:
        say(f"run {run.run_id}: {run.describe()}, {execution.device} {execution.precision}"
            + (f", {world.size} ranks" if world.parallel else ""))
        say(f"records: {record.dir}" + (f" (resuming from iteration {checkpoint['iteration']})" if checkpoint else ""))
        if checkpoint and not Execution.same_numbers(checkpoint["execution"], execution.describe()) and world.main:
            warn(f"resuming with other execution settings than the checkpoint's ({checkpoint['execution']}); the "
                 f"result will not be bit-identical to an uninterrupted run")
        torch.manual_seed(run.seed)  # the seed's initialisation, as its run alone draws it
        models.append(variants.create(run.trained, num_classes=data.num_classes))
    first = starts[0][0]
    cost = model_cost(models[0], first.canonical, image_size=data.image_size, num_classes=data.num_classes)
    code_source = None
    if world.main:
        for _, record, _ in starts:
            _warn_if_short_of_space(record, models[0])
        if not context.quiet:
            say(_cost_line(starts, plan, cost, data, execution))
        code_source = provenance.source_of(exclude=(context.results_dir, Path(context.source.data_dir)))
    members = []
    for run, record, checkpoint in starts:
        code, config = None, {}
        if world.main:
            config = _config(run, data, plan, execution, context.source, code_source, checkpoint)
            code = provenance.version(config)
            if checkpoint and checkpoint.get("source_version", code) != code:
                warn(f"resuming with other code ({code}) than the checkpoint's ({checkpoint['source_version']}); "
                     f"the records describe the code of this attempt")
            record.write_source_diff(code_source.diff)
            record.write_config(config)
        wandb_id = checkpoint["wandb_id"] if checkpoint else _earlier_wandb_id(record if world.main else None)
        wandb_id = wandb_id or f"{run.run_id}-{datetime.datetime.now():%Y%m%d%H%M%S}"  # a run that starts anew
        tracker = Tracker(
            (context.wandb_mode or default_mode()) if world.main else "disabled", wandb_id,
            name=f"{run.canonical} seed{run.seed}", config=config, group=f"{run.dataset.name}:{run.canonical}",
            tags=_tags(run.trained, run.dataset.name, plan), directory=context.results_dir,
            job_type=context.job_type, record=record if world.main else None,
        )
        members.append(RunState(run, record, tracker, code, checkpoint))
    trainer = Trainer(members, models, plan, data, execution, cost, context.started, group=group,
                      quiet=context.quiet, eval_placement=context.eval_placement)
    try:
        trainer.fit()
    except BaseException:
        for member in members:
            member.tracker.finish(member.record.summary() or {}, failed=True)
        raise
    outcomes = []
    for member in members:
        run, record, tracker, status = member.run, member.record, member.tracker, member.status
        outcomes.append(Outcome(run.run_id, record, status))
        if not world.main:
            continue
        summary = record.summary()
        if tracker.location:
            say(f"W&B ({tracker.mode}): {tracker.location}")
        tracker.finish(summary, failed=status != "finished")
        seed = f"seed {run.seed} " if len(members) > 1 else ""
        if status == "finished":
            val = f", val error {summary['val_error']:.2f}%" if summary.get("val_error") is not None else ""
            say(f"{seed}finished: test error {summary['test_error']:.2f}%{val}, train {summary['train_img_s']:.0f} "
                f"img/s, wall {summary['wall_seconds']:.0f} s")
        else:
            say(f"{seed}{status}: {summary.get('reason', '')}")
    return outcomes


def _cost_line(starts: list[tuple], plan: recipes.Plan, cost, data: datasets.Data, execution: Execution) -> str:
    """The forecast of this attempt (forecast.py): the images left to train, timed on this device."""
    first = starts[0][0]
    left = plan.iterations - (starts[0][2]["iteration"] if starts[0][2] else 0)
    speed = forecast.timed_speed(lambda: variants.create(first.trained, num_classes=data.num_classes),
                                 data.image_size, data.num_classes, plan.inputs.batch_size, execution, first.canonical)
    if execution.world_size > 1:  # timed on rank 0 alone; the ranks' shares add up (a GPU each, or the CPU's cores
        # split between them, as torchrun's OMP_NUM_THREADS=1 does)
        speed = forecast.Speed(speed.images_per_second * execution.world_size,
                               speed.how + f" on rank 0, x{execution.world_size} ranks")
    if len(starts) > 1:  # an array's own speed is what `bench perf --array K` measures; here, one net's
        speed = forecast.Speed(speed.images_per_second,
                               speed.how + f"; the array of {len(starts)} trains at its own speed: bench perf "
                                           f"--array {len(starts)} measures it")
    works = [forecast.Work(run.canonical, left * plan.inputs.batch_size, cost.macs) for run, _, _ in starts]
    return forecast.line(works, speed, cost.macs, execution.device, recipe=first.recipe.name,
                         scale=first.recipe.scale)


def _warn_if_short_of_space(record: records.RunRecord, model: nn.Module) -> None:
    """One line before training when the results folder cannot hold two checkpoints of this run (the new one is
    written beside the last one): the model, its batch-norm statistics and SGD's momentum of each weight."""
    checkpoint = records.state_bytes(model.state_dict()) + sum(p.numel() * p.element_size() for p in model.parameters())
    free = free_bytes(record.dir)
    if free is not None and free < 2 * checkpoint:
        warn(f"{record.dir} has {megabytes(free)} free; a checkpoint of this run takes about {megabytes(checkpoint)} "
             f"and is written beside the previous one: free some space, or the run stops at its first checkpoint")


def _earlier_wandb_id(record: records.RunRecord | None) -> str | None:
    """The W&B id of an earlier attempt at this run that stopped before its first checkpoint (its summary.json
    has it from the start), so that the new attempt continues that W&B run; None when the run starts anew
    (no record: a first attempt, or one --force cleared) or the record is a result already (records.DONE)."""
    summary = record.summary() if record is not None else None
    if not summary or summary.get("status") in records.DONE:
        return None
    return summary.get("wandb_id")


class RunState:
    """One run's side of a training: its record and W&B run, and what it carries from step to step apart from
    the others of an array (its warm-up, the time it trained, its status and last row of metrics)."""

    def __init__(self, run: Run, record: records.RunRecord, tracker: Tracker, code: str | None,
                 checkpoint: dict | None):
        self.run, self.record, self.tracker, self.code, self.checkpoint = run, record, tracker, code, checkpoint
        self.warmup_end, self.train_seconds, self.wall_before = None, 0.0, 0.0
        # each attempt's first segment of training (to its first log point) holds the compile, CUDA-graph capture
        # and cudnn's kernel search: its seconds and iterations, apart from the steady segments after it
        self.first_segment_seconds, self.first_segment_iterations = 0.0, 0
        self.checkpoint_iteration = checkpoint["iteration"] if checkpoint else None  # where a next attempt resumes
        if checkpoint:
            self.warmup_end = checkpoint["warmup_end"]
            self.train_seconds, self.wall_before = checkpoint["train_seconds"], checkpoint["wall_seconds"]
            self.first_segment_seconds, self.first_segment_iterations = checkpoint.get("first_segment", (0.0, 0))
        self.warming_up = False
        self.status, self.row = "running", {}

    def end_warmup(self, iteration: int) -> None:
        self.warming_up, self.warmup_end = False, iteration


class Trainer:
    """One attempt at a run, or at the seeds of one run as an array, from their checkpoint (or the first
    iteration) to the end of their plan.

    `fit()` is the training loop; the state each run carries from step to step (the deep-net warm-up, seconds
    trained) is in its RunState, the iteration is theirs in common, and all of it is what a checkpoint holds, so
    a resumed attempt continues where the last one stopped and reaches the same records as an uninterrupted
    run (bit-identical on the CPU)."""

    def __init__(self, members: list[RunState], models: list[nn.Module], plan: recipes.Plan, data: datasets.Data,
                 execution: Execution, cost, started: float, *, group: distributed.Session | None = None,
                 quiet: bool = False, eval_placement: str = "auto"):
        device = execution.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.members, self.plan, self.data, self.execution = members, plan, data, execution
        self.cost, self.group, self.quiet, self.started = cost, group, quiet, started
        if len(members) == 1:
            self.path = TrainingPath(models[0], data, plan, members[0].run.seed, execution,
                                     group.world if group else distributed.SOLO)
        else:
            self.path = array_path(models, data, plan, tuple(member.run.seed for member in members), execution)
        self.steps_per_epoch = self.path.loaders[0].steps_per_epoch
        # An array's speeds count all its seeds' images: the device's img/s on this net, as a run alone's counts
        # its own (each seed's share of the time would read K times slower than its run alone)
        self.width = len(members)
        self.test = _placed(data.test, device, eval_placement, execution.device_share)
        self.val = _placed(data.val, device, eval_placement, execution.device_share) if data.val is not None else None
        # the intermediate evaluations' share of each split (the final one takes all), as config.json records it
        self.evaluation = _evaluation(data, plan, members[0].checkpoint)
        self.schedule, self.cadence, self.warmup = plan.schedule, plan.cadence, plan.schedule.deep_net_warmup

        self.iteration = 0
        for index, member in enumerate(members):
            checkpoint = member.checkpoint
            if checkpoint:
                self.path.load_seed(index, checkpoint["model"], checkpoint["optimizer"])
                self.iteration = checkpoint["iteration"]
                torch.set_rng_state(checkpoint["rng_cpu"])
                member.record.truncate_metrics(self.iteration)
                member.tracker.replay(member.record.metrics())  # offline: this attempt's W&B directory holds them too
            else:
                member.record.reset_metrics()
            member.warming_up = member.warmup_end is None and self.warmup.applies_to(
                getattr(member.run.trained, "depth", 0))
        self.segment_start: float | None = None  # while training between log points: when the segment began
        self.segment_from = self.iteration  # the iteration the open segment began at
        self.first_segment = True  # the attempt's first: compile and warm-up happen in it
        self.eager_sampler_noted = False
        self.eval_batches_run = 0  # test batches the evaluator has seen in this attempt (its warm-up)

    def running(self) -> list[int]:
        """The members still training."""
        return [index for index, member in enumerate(self.members) if member.status == "running"]

    def fit(self) -> list[str]:
        """Train to the end of the plan; returns each run's final status: finished, or diverged."""
        for member in self.members:
            member.record.write_summary(self.summary(member, "running"))
        progress = Progress(self.plan.iterations, self.iteration, self.plan.inputs.batch_size * len(self.members),
                            self.quiet)
        self.segment_start = time.perf_counter()
        try:
            while self.running() and self.iteration < self.plan.iterations:
                epoch, position = divmod(self.iteration, self.steps_per_epoch)
                for batches in zip(*(loader.batches(epoch, position) for loader in self.path.loaders)):
                    lrs = [self.schedule.lr_at(self.iteration, member.warming_up) for member in self.members]
                    self.path.train_step(list(batches), lrs)
                    self.iteration += 1
                    progress.step(self.iteration)
                    for member in self.members:
                        if member.warming_up and self.iteration >= self.warmup.iterations:
                            member.end_warmup(self.iteration)
                    if self.iteration % self.cadence.log_every == 0 or self.iteration == self.plan.iterations:
                        self.log_point(lrs, progress)  # the one place the host waits for the device
                        if not self.running() or self.iteration == self.plan.iterations:
                            break
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (stopping.py): later signals wait for this to be written
            with contextlib.suppress(OutOfSpace):
                for index in self.running():
                    self.members[index].record.write_summary(self.summary(
                        self.members[index], "interrupted", reason="interrupted; run the same command again to resume"))
            raise
        except Exception as error:
            # in a parallel run, rank 0 finds out which rank ended it (distributed.py)
            verdict = self.group.judge(error) if self.group and self.group.world.main else None
            failure = str(error) if isinstance(error, OutOfSpace) else f"{type(error).__name__}: {error}"
            status, reason = verdict or ("failed", failure)
            if status == "interrupted":
                reason += "; run the same command again to resume"
            try:
                for index in self.running():
                    self.members[index].record.write_summary(self.summary(self.members[index], status, reason=reason))
            except OutOfSpace:  # not even room for the summary: the error says it all, the last record stays
                pass
            raise
        finally:
            progress.close()
        for index in self.running():
            member = self.members[index]
            member.status = "finished"
            member.record.write_summary(self.summary(member, "finished", **self.results(member)))
            member.record.drop_checkpoint()  # a finished run needs its summary, not its optimizer state
        return [member.status for member in self.members]

    def log_point(self, lrs: list[float], progress) -> None:
        """Record each run's training curves since the last log point; evaluate, checkpoint or finish when it is
        time. A run whose loss is not finite is recorded diverged here, and its seed changes no more."""
        seen = self.path.images_seen * self.width
        totals = self.path.seed_totals()
        segment_seconds = time.perf_counter() - self.segment_start
        self.segment_start = None  # evaluation and checkpoints are not training time
        self.note_eager_sampler()
        final = self.iteration == self.plan.iterations
        going = []
        for index in self.running():
            member = self.members[index]
            member.train_seconds += segment_seconds
            if self.first_segment:
                member.first_segment_seconds += segment_seconds
                member.first_segment_iterations += self.iteration - self.segment_from
            train_loss, train_error = totals[index]
            row = {"iteration": self.iteration, "epoch": self.iteration / self.steps_per_epoch, "lr": lrs[index],
                   "train/loss": train_loss, "train/error": train_error,
                   "throughput/train_img_s": seen / segment_seconds}
            member.row = row
            if member.warming_up and train_error < 100 * self.warmup.until_error:
                member.end_warmup(self.iteration)
            if math.isfinite(train_loss):
                going.append(index)
                continue
            member.status = "diverged"
            member.record.append_metrics(row)
            member.tracker.log(row, step=self.iteration)
            member.record.write_summary(self.summary(member, "diverged", reason=f"training loss became {train_loss} "
                                                                               f"by iteration {self.iteration}"))
            self.path.freeze(index)
        if not going:
            return
        if final or self.iteration % self.cadence.eval_every == 0:
            self.evaluate(going, final)
        for index in going:
            member = self.members[index]
            member.record.append_metrics(member.row)
            member.tracker.log(member.row, step=self.iteration)
        rows = [self.members[index].row for index in going]
        progress.logged(self.iteration, sum(row["train/loss"] for row in rows) / len(rows),
                        sum(row["train/error"] for row in rows) / len(rows), lrs[going[0]],
                        seeds=len(rows) if len(self.members) > 1 else 1)
        if self.iteration % self.cadence.checkpoint_every == 0 and not final:
            self.save_checkpoints(going)
        self.first_segment = False
        if not final:
            self.segment_from = self.iteration
            self.segment_start = time.perf_counter()

    def note_eager_sampler(self) -> None:
        """config.json's dataset says so once the crop sampler has fallen back to eager in this process
        (data/augmentation.py: torch.compile failed), since the run's speed is then not the compiled one."""
        if self.eager_sampler_noted or self.path.normalized_by_loader or (self.group and not self.group.world.main):
            return
        reason = self.data.augmentation.eager_fallback()
        if reason is None:
            return
        self.eager_sampler_noted = True
        for member in self.members:
            config = json.loads(member.record.config_path.read_text())
            config["dataset"]["crop_sampler"] = f"eager: torch.compile failed ({reason})"
            member.record.write_config(config)

    def evaluate(self, going: list[int], final: bool) -> None:
        """Test (and validation) loss and error into the rows: the whole split at the end, a fixed part before.
        An array evaluates all its seeds on each batch at once."""
        batch = self.execution.eval_batch
        if final and self.execution.pads_evaluation and self.eval_batches_run < 3:
            # a compiled net records its CUDA graph on the third call of a shape: not inside the timed pass
            self.path.seed_evaluation(self.test, (3 - self.eval_batches_run) * batch)
        limit = 0 if final else self.evaluation["intermediate_test_images"]
        self.eval_batches_run += -(-min(limit or len(self.test), len(self.test)) // batch)
        started = time.perf_counter()
        tests = self.path.seed_evaluation(self.test, limit)
        seconds = time.perf_counter() - started
        vals = None
        if self.val is not None:
            vals = self.path.seed_evaluation(self.val, 0 if final else self.evaluation.get("intermediate_val_images", 0))
        for index in going:
            row = self.members[index].row
            row["test/loss"], row["test/error"] = tests[index]
            if final:  # the whole test set at the evaluation batch size, same precision and layout
                row["throughput/inference_img_s"] = len(self.test) * self.width / seconds
            if vals is not None:
                row["val/loss"], row["val/error"] = vals[index]

    def save_checkpoints(self, going: list[int]) -> None:
        for index in going:
            member = self.members[index]
            model_state, optimizer_state = self.path.seed_state(index)
            member.record.save_checkpoint({
                "model": model_state, "optimizer": optimizer_state,
                "iteration": self.iteration, "warmup_end": member.warmup_end, "train_seconds": member.train_seconds,
                "wall_seconds": member.wall_before + time.perf_counter() - self.started,
                "rng_cpu": torch.get_rng_state(), "execution": self.execution.describe(),
                "wandb_id": member.tracker.wandb_id, "source_version": member.code, "evaluation": self.evaluation,
                "first_segment": (member.first_segment_seconds, member.first_segment_iterations),
            })
            member.checkpoint_iteration = self.iteration
            member.record.write_summary(self.summary(member, "running"))

    def summary(self, member: RunState, status: str, **fields) -> dict:
        """A run's summary.json as of now."""
        run = member.run
        return {
            "status": status, "run_id": run.run_id, "spec": run.canonical, "dataset": self.data.name,
            "seed": run.seed, "iterations": self.iteration, "iterations_planned": self.plan.iterations,
            "checkpoint_iteration": member.checkpoint_iteration,
            "warmup_end": member.warmup_end, "params": self.cost.params, "macs": self.cost.macs,
            "train_seconds": round(self.trained_seconds(member), 3),
            "wall_seconds": round(member.wall_before + time.perf_counter() - self.started, 3),
            "updated_at": _now(), "wandb_id": member.tracker.wandb_id, **fields,
        }

    def trained_seconds(self, member: RunState) -> float:
        """Training time so far, the open segment included: a run stopped between log points (minutes apart
        under torchrun) records the time it trained, not the time up to its last log point."""
        if self.segment_start is None or member.status != "running":
            return member.train_seconds
        return member.train_seconds + time.perf_counter() - self.segment_start

    def results(self, member: RunState) -> dict:
        """What a finished run adds to its summary: the final errors, the speed and the peak memory."""
        row = member.row
        return dict(
            test_error=row["test/error"], test_loss=row["test/loss"],
            val_error=row.get("val/error"), val_loss=row.get("val/loss"),
            train_error=row["train/error"], train_loss=row["train/loss"],
            **self.training_speed(member),
            inference_img_s=row["throughput/inference_img_s"],
            wandb_log_seconds=round(member.tracker.log_seconds, 4), **_peak_memory(self.execution.device),
        )


    def training_speed(self, member: RunState) -> dict:
        """Steady-state `train_img_s`: the segments after each attempt's first, whose time holds the compile,
        CUDA-graph capture and cudnn's kernel search, so that a short run records its speed, not a fraction of
        it. `compile_seconds`: what those first segments took beyond the steady speed (near 0 in eager mode on
        a CPU). A run of one segment has no steady part: its whole speed, and compile_seconds None."""
        batch = self.plan.inputs.batch_size * self.width
        steady_iterations = self.iteration - member.first_segment_iterations
        steady_seconds = member.train_seconds - member.first_segment_seconds
        if steady_iterations <= 0 or steady_seconds <= 0:
            return {"train_img_s": self.iteration * batch / member.train_seconds if member.train_seconds else None,
                    "compile_seconds": None}
        steady = steady_iterations * batch / steady_seconds
        extra = member.first_segment_seconds - member.first_segment_iterations * batch / steady
        return {"train_img_s": steady, "compile_seconds": round(max(0.0, extra), 3)}


def _placed(split: datasets.Split, device: torch.device, placement: str, share: float = 1.0) -> datasets.Split:
    """An evaluation split on the device when it fits there; else left on the host, copied a batch at a time."""
    return split.to(device) if datasets.loader.resident(split, device, placement, share) else split


def _peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20, "peak_memory_kind": "cuda_allocated"}
    # ru_maxrss is in KiB on Linux: the whole process's peak, data and interpreter included.
    return {"peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_memory_kind": "process_rss"}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _variant_axes(spec) -> dict:
    """The variant's axes for config.json and W&B (`variant.<axis>`), as `variants.Spec` declares them."""
    if isinstance(spec, variants.TimmSpec):
        return {"family": "timm", "timm_model": spec.name}
    return spec.axis_values()


def _tags(spec, dataset: str, plan: recipes.Plan) -> list[str]:
    variant = ["family:timm", f"timm_model:{spec.name}"] if isinstance(spec, variants.TimmSpec) else spec.tags()
    return variant + [f"dataset:{dataset}", f"recipe:{plan.name}"]


def _config(run: Run, data: datasets.Data, plan: recipes.Plan, execution: Execution, source: datasets.Source,
            code: provenance.Source, checkpoint: dict | None = None) -> dict:
    """config.json: what was run, the net as trained (`variant`: a recipe's zero-gamma included), and how."""
    import timm
    import torchvision
    import wandb

    return {
        "run_id": run.run_id,
        "spec": run.canonical,
        "spec_as_given": run.request.spec if isinstance(run.request.spec, str) else run.canonical,
        "spec_as_trained": run.trained_canonical,
        "variant": _variant_axes(run.trained),
        "dataset": {
            "name": data.name, "num_classes": data.num_classes, "train_size": len(data.train),
            "val_size": len(data.val) if data.val is not None else 0, "test_size": len(data.test),
            "data_dir": str(Path(source.data_dir).resolve()), "image_size": data.image_size,
            "augmentation": data.augmentation.describe() + (
                "; crops and normalisation in one C++ pass"
                if data.augmentation.fuses(execution.device, data.normalize) else ""),
            "evaluation": data.eval_transform.describe() if data.eval_transform else "the images as stored",
            **data.details, "placement": execution.placement, "device_share": execution.device_share,
        },
        "recipe": plan.to_dict(),
        "evaluation": _evaluation(data, plan, checkpoint),
        "seed": run.seed,
        "execution": {**execution.describe(),
                      **({"compile_cache": execution.compile_cache} if execution.compile_cache else {})},
        "versions": {
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "wandb": wandb.__version__, "resnet_bench": _package_version(),
        },
        "git_commit": code.git_commit,
        "source": code.to_dict(),
        "created_at": _now(),
    }


def _evaluation(data: datasets.Data, plan: recipes.Plan, checkpoint: dict | None = None) -> dict:
    """What each evaluation measures: how many images of the test (and validation) split the intermediate
    points use (the first ones in stored order, a fixed shuffle: Cadence.intermediate_images) and the final one.

    A resumed run keeps what its checkpoint says, so that one record's curve is measured one way throughout;
    a checkpoint written before the rule existed used the recipe's `eval_subset`, or all images."""
    if checkpoint and "evaluation" in checkpoint:
        return checkpoint["evaluation"]

    def intermediate(size: int) -> int:
        cadence = plan.cadence
        return min(cadence.eval_subset or size, size) if checkpoint else cadence.intermediate_images(size)

    described = {"intermediate_test_images": intermediate(len(data.test)), "final_test_images": len(data.test)}
    if data.val is not None:
        described |= {"intermediate_val_images": intermediate(len(data.val)), "final_val_images": len(data.val)}
    return described


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("resnet-bench")
    except PackageNotFoundError:
        return "unknown"
