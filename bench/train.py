"""Train one variant on a dataset with a recipe (the paper's CIFAR §4.2 or ImageNet §3.4, Bag of Tricks'),
recording everything a comparison needs.

`run()` takes a resolved run (runs.py) and decides what to do with its id: skip a finished run, resume an
interrupted one, start afresh. `Trainer.fit()` is the loop itself, top to bottom: set the lr from the
schedule, take an augmented batch from the device-resident data, step SGD, and at log points (the only host
syncs) record the curves, evaluate, checkpoint. A NaN/inf loss ends the run as `diverged`; an exception ends
it as `failed`; Ctrl-C as `interrupted`. Each keeps what was recorded, and the next call resumes from the
last checkpoint. The records and W&B describe the net as trained (`Run.trained`: a recipe's zero-gamma
included), under the run id and name of the request.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import platform
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import variants

from . import data as datasets
from . import recipe as recipes
from . import distributed, forecast, provenance, records
from .cost import model_cost
from .errors import OutOfSpace, UserError, free_bytes, megabytes
from .progress import Progress
from .runs import Request, Run
from .tracking import Tracker, default_mode, warn


@dataclass(frozen=True)
class Execution:
    """How a run executes (not what it computes): recorded in config.json, not part of the run id."""

    device: torch.device
    # "auto": bf16 autocast where the hardware runs it faster than fp32 (CUDA with bf16 support, CPUs with
    # AMX tiles), fp32 elsewhere: on an AVX-512 CPU without AMX, oneDNN's bf16 convolutions are slower than
    # fp32 ones (resnet20 training, 2 cores: 490 img/s bf16 vs 668 fp32 channels_last).
    precision: str = "auto"
    channels_last: bool = True
    # "auto": CUDA graphs through torch.compile(mode="reduce-overhead") on CUDA, where the CIFAR nets are
    # launch-bound (resnet20 training on an H100: 29.7k img/s against 13.6k eager); "off" on the CPU, where
    # compiling measured slower (600 img/s against 668 eager, after 38 s of compiling).
    compile: str = "auto"
    # A data-parallel run (torchrun): its processes, and whether batch norm takes its statistics over the
    # whole global batch (SyncBatchNorm, GPUs only) or over each rank's share (distributed.py).
    world_size: int = 1
    sync_bn: bool = False
    # Where the training split lives (data/loader.py): whole on the device, streamed to it, or auto; the batches
    # are the same either way. Recorded in config.json's dataset section, not in `describe`.
    placement: str = "auto"

    PRECISIONS = ("auto", "bf16", "fp32")
    COMPILE_MODES = ("auto", "off", "default", "reduce-overhead")

    def resolved(self) -> "Execution":
        """The same settings with `auto` made concrete, and bf16 dropped where the device lacks it."""
        if self.precision not in self.PRECISIONS:
            raise UserError(f"precision {self.precision} is not allowed; choose one of: {', '.join(self.PRECISIONS)}")
        if self.compile not in self.COMPILE_MODES:
            raise UserError(f"compile {self.compile} is not allowed; choose one of: {', '.join(self.COMPILE_MODES)}")
        if self.sync_bn and self.world_size > 1 and self.device.type != "cuda":
            raise UserError("--sync-bn needs CUDA ranks: torch's SyncBatchNorm runs on GPUs only")
        resolved = self
        if self.compile == "auto":
            # Not across DDP: the nets that need several GPUs (ImageNet size) are compute-bound, and CUDA graphs
            # around DDP's bucketed all-reduce are not something this project has been able to test.
            graphs = self.device.type == "cuda" and self.world_size == 1
            resolved = replace(resolved, compile="reduce-overhead" if graphs else "off")
        if self.precision == "auto":
            return replace(resolved, precision="bf16" if _fast_bf16(self.device) else "fp32")
        if self.device.type == "cuda" and self.precision == "bf16" and not torch.cuda.is_bf16_supported():
            warn(f"{torch.cuda.get_device_name(self.device)} has no bf16 support; training in fp32")
            return replace(resolved, precision="fp32")
        return resolved

    def compiled(self, model: nn.Module):
        """The model as the execution runs it: itself, or torch.compile'd in the resolved mode."""
        if self.compile == "off":
            return model
        return torch.compile(model, mode=None if self.compile == "default" else self.compile)

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @property
    def eval_batch(self) -> int:
        """Images per evaluation forward: large on CUDA to fill the GPU; on the CPU, batches that stay in cache
        (resnet56 inference, 2 cores: 899 img/s at 128 against 457 at 1000)."""
        return 1000 if self.device.type == "cuda" else 128

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> dict:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else _cpu_name()
        return {
            "device": str(self.device), "device_name": name, "precision": self.precision,
            "memory_format": "channels_last" if self.channels_last else "contiguous", "compile": self.compile,
            "threads": torch.get_num_threads(), "world_size": self.world_size, "sync_bn": self.sync_bn,
        }


def _fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":  # native bf16 (Ampere on); the emulated kind on older GPUs is slower than fp32
        return torch.cuda.is_bf16_supported(including_emulation=False)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, hence looked up defensively
    return bool(amx and amx())


class TrainingPath:
    """The runner's machinery for one model on one device, shared by `Trainer` and `bench perf`.

    Holds the model in the execution's layout, SGD, the loader (the training split whole on the device, or
    streamed to it when it does not fit: the execution's `placement`) and the normaliser; `step` is one training
    iteration with no host sync (running loss and error stay on the device until `totals`), and `evaluate` is a full
    pass over a split at the execution's evaluation batch size, through the dataset's evaluation transform.

    In a data-parallel world (distributed.py) the model trains inside DistributedDataParallel on this rank's
    part of each batch, `totals` and `evaluate` sum over the ranks (each evaluates its slice of the split),
    and `self.model` stays the bare net that checkpoints hold.
    """

    def __init__(self, model: nn.Module, data: datasets.Data, plan: recipes.Plan, seed: int,
                 execution: Execution, world: distributed.World = distributed.SOLO):
        execution = execution.resolved()
        device = execution.device
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        if world.parallel and execution.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.world = world
        self.model = model.to(device, memory_format=execution.memory_format)
        self.execution = execution
        self.plan = plan
        self.eval_transform = data.eval_transform
        # fused: one kernel for the whole update on CUDA; on the CPU the default loop measured the same.
        fused = {"fused": True} if device.type == "cuda" else {}
        sgd = plan.optimizer
        self.optimizer = torch.optim.SGD(_parameter_groups(model, sgd), lr=plan.schedule.lr, momentum=sgd.momentum,
                                         weight_decay=sgd.weight_decay, nesterov=sgd.nesterov, **fused)
        self.stream = not datasets.loader.resident(data.train, device, execution.placement)
        train_split = data.train if self.stream else data.train.to(device)
        self.normalizer = datasets.Normalizer(train_split.images, data.normalize).to(device)
        # where the augmentation can normalise as it crops (ImageNet-resolution data on the CPU), it does
        fused = data.augmentation.normalizing(self.normalizer, execution.memory_format, device)
        self.normalized_by_loader = fused is not None
        self.loader = datasets.EpochLoader(train_split, plan.inputs.batch_size, seed, fused or data.augmentation,
                                           stream=self.stream, device=device, part=(world.rank, world.size))
        if world.parallel:
            from torch.nn.parallel import DistributedDataParallel

            trained = DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
            self.forward = execution.compiled(trained)
            self.evaluator = execution.compiled(self.model)  # evaluation needs no gradient sync
        else:
            self.forward = self.evaluator = execution.compiled(model)
        self.loss_sum = torch.zeros((), device=device)
        self.wrong = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0

    def step(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.execution.autocast():
            logits = self.forward(self.inputs(images))
            loss = F.cross_entropy(logits, labels, label_smoothing=self.plan.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach().float() * len(labels)
        self.wrong += (logits.detach().argmax(1) != labels).sum()
        self.seen += len(labels)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """A training batch as the network takes it: normalised here, unless the loader did it as it cropped."""
        return images if self.normalized_by_loader else self.normalizer(images, self.execution.memory_format)

    @property
    def images_seen(self) -> int:
        """Training images since the last `totals`, over all ranks (each takes the same share)."""
        return self.seen * self.world.size

    def totals(self) -> tuple[float, float]:
        """Mean training loss and error (%) since the last call, over all ranks: the host waits for the device."""
        seen = self.images_seen
        if self.world.parallel:
            _sum_over_ranks(self.loss_sum, self.wrong)
        loss, error = self.loss_sum.item() / seen, 100.0 * self.wrong.item() / seen
        self.loss_sum.zero_()
        self.wrong.zero_()
        self.seen = 0
        return loss, error

    def evaluate(self, split: datasets.Split, limit: int = 0) -> tuple[float, float]:
        """Mean loss and error (%) on the first `limit` images of `split` (0: all), same precision and layout."""
        device = self.execution.device
        self.model.eval()
        count = min(limit or len(split), len(split))
        rank, ranks = self.world.rank, self.world.size
        loss_sum = torch.zeros((), device=device)
        wrong = torch.zeros((), device=device, dtype=torch.long)
        if self.world.parallel:
            _running_stats_from_rank0(self.model)  # each rank has updated them from its own share since
        with torch.no_grad():
            for images, labels in datasets.eval_batches(split, self.execution.eval_batch, device,
                                                        count * (rank + 1) // ranks, self.eval_transform,
                                                        first=count * rank // ranks):
                with self.execution.autocast():
                    logits = self.evaluator(self.normalizer(images, self.execution.memory_format)).float()
                loss_sum += F.cross_entropy(logits, labels, reduction="sum")
                wrong += (logits.argmax(1) != labels).sum()
        if self.world.parallel:
            _sum_over_ranks(loss_sum, wrong)
        self.model.train()
        return loss_sum.item() / count, 100.0 * wrong.item() / count


def _sum_over_ranks(*tensors: torch.Tensor) -> None:
    import torch.distributed as dist

    for tensor in tensors:
        dist.all_reduce(tensor)


def _running_stats_from_rank0(model: nn.Module) -> None:
    """Rank 0's batch-norm running statistics on every rank: the ones its checkpoints hold."""
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def _parameter_groups(model: nn.Module, sgd: recipes.Optimizer):
    """All parameters in one group; with `no_bn_decay`, BN weights and every bias (the 1-d tensors) apart,
    without weight decay (Bag of Tricks §3.1)."""
    if not sgd.no_bn_decay:
        return model.parameters()
    decayed = [p for p in model.parameters() if p.ndim > 1]
    exempt = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decayed}, {"params": exempt, "weight_decay": 0.0}]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(text: str) -> torch.device:
    """`auto` (CUDA when present), `cpu`, `cuda` or `cuda:i`, checked against this machine."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"--device {text} is not allowed; choose one of: auto, cpu, cuda, cuda:INDEX") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {text} is not allowed; choose one of: auto, cpu, cuda, cuda:INDEX")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {text}: CUDA is not available on this machine (use --device cpu or auto)")
        if (device.index or 0) >= torch.cuda.device_count():
            raise UserError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


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
            return _attempt(resolved, source, Path(results_dir), execution, group, started, force=force,
                            wandb_mode=wandb_mode, quiet=quiet or not world.main, job_type=job_type)
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


def _attempt(run: Run, source: datasets.Source, results_dir: Path, execution: Execution,
             group: distributed.Session | None, started: float, *, force: bool, wandb_mode: str | None,
             quiet: bool, job_type: str) -> Outcome:
    """One attempt at `run`: skip it if done, else read the data, take the run's lock, build the model from the
    checkpoint or afresh, record what is being run, and fit."""
    world = group.world if group else distributed.SOLO

    def from_rank0(value):
        """What rank 0 decided, on every rank (a single process: the value itself)."""
        return group.broadcast(value) if group else value

    record = records.RunRecord(results_dir, run.run_id) if world.main else records.Unwritten(results_dir, run.run_id)
    say = (lambda *_: None) if quiet else print
    status = from_rank0(None if force or not world.main else record.status())
    if status in records.DONE:
        say(f"run {run.run_id} is already {status}; nothing to do (records: {record.dir}; --force to redo)")
        return Outcome(run.run_id, record, status, skipped=True)

    if group and not world.main:
        group.barrier()  # rank 0 downloads and decodes the data first; the others then read its cache
    data = source.load(run.request.dataset, run.recipe.inputs, say=None if not quiet else lambda _: None)
    if group and world.main:
        group.barrier()
    if len(data.train) < run.recipe.batch_size:
        raise datasets.DataError(f"batch size {run.recipe.batch_size} is larger than the {len(data.train)} "
                                 f"training images")
    plan = run.plan(len(data.train))
    # decided once, recorded, and what the training split does; either way the batches are the same (loader.py).
    # The evaluation splits are placed as asked (auto: each where it fits).
    requested = execution.placement
    execution = replace(execution, placement="resident" if datasets.loader.resident(
        data.train, execution.device, requested) else "stream")
    with record.lock() if world.main else contextlib.nullcontext():
        if force:  # only now: a forced run that cannot even load its data keeps the old record
            record.clear()
        checkpoint = from_rank0(record.load_checkpoint() if world.main else None)
        say(f"run {run.run_id}: {run.describe()}, {execution.device} {execution.precision}"
            + (f", {world.size} ranks" if world.parallel else ""))
        say(f"records: {record.dir}" + (f" (resuming from iteration {checkpoint['iteration']})" if checkpoint else ""))
        if checkpoint and checkpoint["execution"] != execution.describe() and world.main:
            warn(f"resuming with other execution settings than the checkpoint's ({checkpoint['execution']}); the "
                 f"result will not be bit-identical to an uninterrupted run")

        torch.manual_seed(run.seed)
        model = variants.create(run.trained, num_classes=data.num_classes)
        cost = model_cost(model, run.canonical, image_size=data.image_size, num_classes=data.num_classes)
        if world.main:
            _warn_if_short_of_space(record, model)
            if not quiet:
                say(_cost_line(run, plan, cost, data, execution, checkpoint))
        code, config = None, {}
        if world.main:
            code_source = provenance.source_of(exclude=(results_dir, Path(source.data_dir)))
            config = _config(run, data, plan, execution, source, code_source, checkpoint)
            code = provenance.version(config)
            if checkpoint and checkpoint.get("source_version", code) != code:
                warn(f"resuming with other code ({code}) than the checkpoint's ({checkpoint['source_version']}); "
                     f"the records describe the code of this attempt")
            record.write_source_diff(code_source.diff)
            record.write_config(config)
        wandb_id = checkpoint["wandb_id"] if checkpoint else _earlier_wandb_id(record if world.main else None)
        wandb_id = wandb_id or f"{run.run_id}-{datetime.datetime.now():%Y%m%d%H%M%S}"  # a run that starts anew
        tracker = Tracker(
            (wandb_mode or default_mode()) if world.main else "disabled", wandb_id,
            name=f"{run.canonical} seed{run.seed}", config=config, group=f"{run.dataset.name}:{run.canonical}",
            tags=_tags(run.trained, run.dataset.name, plan), directory=results_dir, job_type=job_type,
            record=record if world.main else None,
        )
        trainer = Trainer(run, plan, data, model, execution, record, tracker, cost, checkpoint, started,
                          code=code, group=group, quiet=quiet, eval_placement=requested)
        try:
            status = trainer.fit()
        except BaseException:
            tracker.finish(record.summary() or {}, failed=True)
            raise
    if not world.main:
        return Outcome(run.run_id, record, status)
    summary = record.summary()
    if tracker.location:
        say(f"W&B ({tracker.mode}): {tracker.location}")
    tracker.finish(summary, failed=status != "finished")
    if status == "finished":
        val = f", val error {summary['val_error']:.2f}%" if summary.get("val_error") is not None else ""
        say(f"finished: test error {summary['test_error']:.2f}%{val}, train {summary['train_img_s']:.0f} img/s, "
            f"wall {summary['wall_seconds']:.0f} s")
    else:
        say(f"{status}: {summary.get('reason', '')}")
    return Outcome(run.run_id, record, status)


def _cost_line(run: Run, plan: recipes.Plan, cost, data: datasets.Data, execution: Execution,
               checkpoint: dict | None) -> str:
    """The forecast of this attempt (forecast.py): the images left to train, timed on this device."""
    left = plan.iterations - (checkpoint["iteration"] if checkpoint else 0)
    speed = forecast.timed_speed(lambda: variants.create(run.trained, num_classes=data.num_classes), data.image_size,
                                 data.num_classes, plan.inputs.batch_size, execution, run.canonical)
    if execution.world_size > 1:  # timed on rank 0 alone; the ranks' shares add up (a GPU each, or the CPU's cores
        # split between them, as torchrun's OMP_NUM_THREADS=1 does)
        speed = forecast.Speed(speed.images_per_second * execution.world_size,
                               speed.how + f" on rank 0, x{execution.world_size} ranks")
    work = forecast.Work(run.canonical, left * plan.inputs.batch_size, cost.macs)
    return forecast.line([work], speed, cost.macs, execution.device, recipe=run.recipe.name, scale=run.recipe.scale)


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


class Trainer:
    """One attempt at a run, from its checkpoint (or the first iteration) to the end of its plan.

    `fit()` is the training loop; the state it carries from step to step (iteration, the deep-net warm-up,
    seconds trained) is what a checkpoint holds, so a resumed attempt continues where the last one stopped and
    reaches the same records as an uninterrupted run (bit-identical on the CPU)."""

    def __init__(self, run: Run, plan: recipes.Plan, data: datasets.Data, model: nn.Module, execution: Execution,
                 record: records.RunRecord, tracker: Tracker, cost, checkpoint: dict | None, started: float, *,
                 code: str | None = None, group: distributed.Session | None = None, quiet: bool = False,
                 eval_placement: str = "auto"):
        device = execution.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.run, self.plan, self.data, self.model, self.execution = run, plan, data, model, execution
        self.record, self.tracker, self.cost, self.code, self.group, self.quiet = record, tracker, cost, code, group, quiet
        self.started = started
        self.path = TrainingPath(model, data, plan, run.seed, execution, group.world if group else distributed.SOLO)
        self.loader = self.path.loader
        self.test = _placed(data.test, device, eval_placement)
        self.val = _placed(data.val, device, eval_placement) if data.val is not None else None
        # the intermediate evaluations' share of each split (the final one takes all), as config.json records it
        self.evaluation = _evaluation(data, plan, checkpoint)
        self.schedule, self.cadence, self.warmup = plan.schedule, plan.cadence, plan.schedule.deep_net_warmup

        self.iteration, self.warmup_end, self.train_seconds, self.wall_before = 0, None, 0.0, 0.0
        self.checkpoint_iteration = checkpoint["iteration"] if checkpoint else None  # where a next attempt resumes
        if checkpoint:
            model.load_state_dict(checkpoint["model"])
            self.path.optimizer.load_state_dict(checkpoint["optimizer"])
            self.iteration, self.warmup_end = checkpoint["iteration"], checkpoint["warmup_end"]
            self.train_seconds, self.wall_before = checkpoint["train_seconds"], checkpoint["wall_seconds"]
            torch.set_rng_state(checkpoint["rng_cpu"])
            record.truncate_metrics(self.iteration)
            tracker.replay(record.metrics())  # offline: this attempt's W&B directory holds the earlier rows too
        else:
            record.reset_metrics()
        self.warming_up = self.warmup_end is None and self.warmup.applies_to(getattr(run.trained, "depth", 0))
        self.status, self.row = "running", {}
        self.segment_start: float | None = None  # while training between log points: when the segment began

    def fit(self) -> str:
        """Train to the end of the plan; returns the final status: finished, or diverged."""
        self.record.write_summary(self.summary("running"))
        progress = Progress(self.plan.iterations, self.iteration, self.plan.inputs.batch_size, self.quiet)
        self.segment_start = time.perf_counter()
        try:
            while self.status == "running" and self.iteration < self.plan.iterations:
                epoch, position = divmod(self.iteration, self.loader.steps_per_epoch)
                for images, labels in self.loader.batches(epoch, position):
                    lr = self.schedule.lr_at(self.iteration, self.warming_up)
                    self.path.step(images, labels, lr)
                    self.iteration += 1
                    progress.step(self.iteration)
                    if self.warming_up and self.iteration >= self.warmup.iterations:
                        self.end_warmup()
                    if self.iteration % self.cadence.log_every == 0 or self.iteration == self.plan.iterations:
                        self.log_point(lr, progress)  # the one place the host waits for the device
                        if self.status != "running":
                            break
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP (stopping.py): later signals wait for this to be written
            with contextlib.suppress(OutOfSpace):
                self.record.write_summary(self.summary("interrupted",
                                                       reason="interrupted; run the same command again to resume"))
            raise
        except Exception as error:
            # in a parallel run, rank 0 finds out which rank ended it (distributed.py)
            verdict = self.group.judge(error) if self.group and self.group.world.main else None
            failure = str(error) if isinstance(error, OutOfSpace) else f"{type(error).__name__}: {error}"
            status, reason = verdict or ("failed", failure)
            if status == "interrupted":
                reason += "; run the same command again to resume"
            try:
                self.record.write_summary(self.summary(status, reason=reason))
            except OutOfSpace:  # not even room for the summary: the error says it all, the last record stays
                pass
            raise
        finally:
            progress.close()
        if self.status == "diverged":
            self.record.write_summary(self.summary("diverged", reason=f"training loss became {self.row['train/loss']} "
                                                                     f"by iteration {self.iteration}"))
            return self.status
        self.record.write_summary(self.summary("finished", **self.results()))
        self.record.drop_checkpoint()  # a finished run needs its summary, not its optimizer state
        return self.status

    def end_warmup(self) -> None:
        self.warming_up, self.warmup_end = False, self.iteration

    def log_point(self, lr: float, progress) -> None:
        """Record the training curves since the last log point; evaluate, checkpoint or finish when it is time."""
        seen = self.path.images_seen
        train_loss, train_error = self.path.totals()
        segment_seconds = time.perf_counter() - self.segment_start
        self.train_seconds += segment_seconds
        self.segment_start = None  # evaluation and checkpoints are not training time
        final = self.iteration == self.plan.iterations
        row = {"iteration": self.iteration, "epoch": self.iteration / self.loader.steps_per_epoch, "lr": lr,
               "train/loss": train_loss, "train/error": train_error, "throughput/train_img_s": seen / segment_seconds}
        self.row = row
        if self.warming_up and train_error < 100 * self.warmup.until_error:
            self.end_warmup()
        if not math.isfinite(train_loss):
            self.status = "diverged"
            self.record.append_metrics(row)
            self.tracker.log(row, step=self.iteration)
            return
        if final or self.iteration % self.cadence.eval_every == 0:
            self.evaluate(row, final)
        self.record.append_metrics(row)
        self.tracker.log(row, step=self.iteration)
        progress.logged(self.iteration, train_loss, train_error, lr)
        if self.iteration % self.cadence.checkpoint_every == 0 and not final:
            self.save_checkpoint()
        if final:
            self.status = "finished"
        else:
            self.segment_start = time.perf_counter()

    def evaluate(self, row: dict, final: bool) -> None:
        """Test (and validation) loss and error into `row`: the whole split at the end, a fixed part before."""
        started = time.perf_counter()
        row["test/loss"], row["test/error"] = self.path.evaluate(
            self.test, 0 if final else self.evaluation["intermediate_test_images"])
        if final:  # the whole test set at the evaluation batch size, same precision and layout
            row["throughput/inference_img_s"] = len(self.test) / (time.perf_counter() - started)
        if self.val is not None:
            row["val/loss"], row["val/error"] = self.path.evaluate(
                self.val, 0 if final else self.evaluation.get("intermediate_val_images", 0))

    def save_checkpoint(self) -> None:
        self.record.save_checkpoint({
            "model": self.model.state_dict(), "optimizer": self.path.optimizer.state_dict(),
            "iteration": self.iteration, "warmup_end": self.warmup_end, "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_before + time.perf_counter() - self.started, "rng_cpu": torch.get_rng_state(),
            "execution": self.execution.describe(), "wandb_id": self.tracker.wandb_id,
            "source_version": self.code, "evaluation": self.evaluation,
        })
        self.checkpoint_iteration = self.iteration
        self.record.write_summary(self.summary("running"))

    def summary(self, status: str, **fields) -> dict:
        """summary.json as of now."""
        return {
            "status": status, "run_id": self.run.run_id, "spec": self.run.canonical, "dataset": self.data.name,
            "seed": self.run.seed, "iterations": self.iteration, "iterations_planned": self.plan.iterations,
            "checkpoint_iteration": self.checkpoint_iteration,
            "warmup_end": self.warmup_end, "params": self.cost.params, "macs": self.cost.macs,
            "train_seconds": round(self.trained_seconds(), 3),
            "wall_seconds": round(self.wall_before + time.perf_counter() - self.started, 3),
            "updated_at": _now(), "wandb_id": self.tracker.wandb_id, **fields,
        }

    def trained_seconds(self) -> float:
        """Training time so far, the open segment included: a run stopped between log points (minutes apart
        under torchrun) records the time it trained, not the time up to its last log point."""
        if self.segment_start is None:
            return self.train_seconds
        return self.train_seconds + time.perf_counter() - self.segment_start

    def results(self) -> dict:
        """What a finished run adds to its summary: the final errors, the speed and the peak memory."""
        row = self.row
        return dict(
            test_error=row["test/error"], test_loss=row["test/loss"],
            val_error=row.get("val/error"), val_loss=row.get("val/loss"),
            train_error=row["train/error"], train_loss=row["train/loss"],
            train_img_s=(self.iteration * self.plan.inputs.batch_size / self.train_seconds
                         if self.train_seconds else None),
            inference_img_s=row["throughput/inference_img_s"],
            wandb_log_seconds=round(self.tracker.log_seconds, 4), **_peak_memory(self.execution.device),
        )


def _placed(split: datasets.Split, device: torch.device, placement: str) -> datasets.Split:
    """An evaluation split on the device when it fits there; else left on the host, copied a batch at a time."""
    return split.to(device) if datasets.loader.resident(split, device, placement) else split


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
            **data.details, "placement": execution.placement,
        },
        "recipe": plan.to_dict(),
        "evaluation": _evaluation(data, plan, checkpoint),
        "seed": run.seed,
        "execution": execution.describe(),
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
