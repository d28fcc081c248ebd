"""The training paths: what one training step and one evaluation do on the device, for a run alone
(`TrainingPath`: one net, torch's SGD, DDP under torchrun) and for a run array, the seeds of one spec trained
together in one process: fused (`ArrayPath`: one net with a leading seed dimension, HFTA's horizontally fused
training, for GPUs) or in turn (`InTurnPath`: each seed's own TrainingPath, one after another in each step,
for the CPU). All speak the seeds interface the Trainer (train.py) drives: `loaders`, `train_step`,
`seed_totals`, `seed_evaluation`, `seed_state`, `load_seed`, `freeze`; a run alone is an array of one.
`bench perf` times the same paths.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import data as datasets
from . import distributed
from . import recipe as recipes
from .execution import Execution


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
                 execution: Execution, world: distributed.World = distributed.SOLO,
                 inputs: TrainingInputs | None = None):
        execution = execution.resolved()
        device = execution.device
        execution.configure_kernels()
        if world.parallel and execution.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.world = world
        self.model = model.to(device, memory_format=execution.memory_format)
        self.execution = execution
        self.plan = plan
        self.eval_transform = data.eval_transform
        self.optimizer = solo_sgd(self.model, plan, device)
        inputs = inputs or TrainingInputs.of(data, execution)
        self.normalizer, self.normalized_by_loader = inputs.normalizer, inputs.normalized_by_loader
        self.loader = inputs.loader(plan, seed, device, world)
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

    def step(self, images: torch.Tensor, labels: torch.Tensor, lr: float, *, finite_only: bool = False) -> bool:
        """One training iteration. `finite_only` (a seed of an array in turn): a loss that is not finite is
        counted in the totals but changes no weight, and the step returns False (the host reads the loss: free
        on the CPU, where such arrays run)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.execution.autocast():
            logits = self.forward(self.inputs(images))
            loss = F.cross_entropy(logits, labels, label_smoothing=self.plan.label_smoothing)
        self.loss_sum += loss.detach().float() * len(labels)
        self.wrong += (logits.detach().argmax(1) != labels).sum()
        self.seen += len(labels)
        if finite_only and not torch.isfinite(loss).item():
            return False
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return True

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
        return evaluate_together([self], split, limit)[0]

    # ---- the seeds interface the Trainer speaks (ArrayPath's), for an array of one -----------------------
    @property
    def loaders(self) -> list[datasets.EpochLoader]:
        return [self.loader]

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]], lrs: list[float]) -> None:
        (images, labels), = batches
        self.step(images, labels, lrs[0])

    def seed_totals(self) -> list[tuple[float, float]]:
        return [self.totals()]

    def seed_evaluation(self, split: datasets.Split, limit: int = 0) -> list[tuple[float, float]]:
        return [self.evaluate(split, limit)]

    def seed_state(self, index: int) -> tuple[dict, dict]:
        """What a checkpoint holds: the model's and the optimizer's state_dict."""
        return self.model.state_dict(), self.optimizer.state_dict()

    def load_seed(self, index: int, model_state: dict, optimizer_state: dict) -> None:
        self.model.load_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)

    def freeze(self, index: int) -> None:
        """Nothing to do: a run alone stops at the log point that finds it diverged."""


def evaluate_together(paths: list[TrainingPath], split: datasets.Split, limit: int = 0) -> list[tuple[float, float]]:
    """Each path's mean loss and error (%) on the first `limit` images of `split` (0: all), every net on each
    batch as it comes (read and transformed once), in the paths' precision and layout. Under torchrun each rank
    evaluates its slice of the split, and the sums are over the ranks."""
    first = paths[0]
    execution, world = first.execution, first.world
    device = execution.device
    count = min(limit or len(split), len(split))
    rank, ranks = world.rank, world.size
    sums = [(torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)) for _ in paths]
    for path in paths:
        if world.parallel:
            _running_stats_from_rank0(path.model)  # each rank has updated them from its own share since
        path.model.eval()
    with torch.no_grad():
        for images, labels in datasets.eval_batches(split, execution.eval_batch, device,
                                                    count * (rank + 1) // ranks, first.eval_transform,
                                                    first=count * rank // ranks, pad=execution.pads_evaluation):
            inputs = first.normalizer(images, execution.memory_format)
            for path, (loss_sum, wrong) in zip(paths, sums):
                with execution.autocast():
                    logits = path.evaluator(inputs)[:len(labels)]
                logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 autocast's up to fp32
                loss_sum += F.cross_entropy(logits, labels, reduction="sum")
                wrong += (logits.argmax(1) != labels).sum()
    results = []
    for path, (loss_sum, wrong) in zip(paths, sums):
        if world.parallel:
            _sum_over_ranks(loss_sum, wrong)
        path.model.train()
        results.append((loss_sum.item() / count, 100.0 * wrong.item() / count))
    return results


class InTurnPath:
    """A run array whose seeds take their steps in turn: each seed its own run alone's path (TrainingPath: its
    net, torch's SGD, its EpochLoader), stepped one after another in each iteration, in one process that loads
    the data once and evaluates every seed on each batch of the test split as it is read. Each seed computes
    what its run alone computes, in the same kernels, so its record is its run alone's to the last bit and the
    two resume each other's checkpoints with nothing changed.

    `--array-mode auto` on the CPU: its convolutions are compute-bound, so fusing the seeds (ArrayPath) buys no
    speed there (0.54x the img/s of the runs one after another, results/perf/cpu/array.md) and costs fp32's
    last bits; what an array still saves on the CPU is a process, a data load and a cost line per seed.

    A seed whose loss is not finite stops changing at that step (the host reads each loss, which costs nothing
    on the CPU): its run is recorded diverged at the next log point while the others go on, as in ArrayPath.
    """

    def __init__(self, models: list[nn.Module], data: datasets.Data, plan: recipes.Plan, seeds: tuple[int, ...],
                 execution: Execution):
        if len(models) != len(seeds) or not seeds:
            raise ValueError(f"an array needs one net per seed: {len(models)} nets for seeds {seeds}")
        self.seeds = tuple(seeds)
        execution = execution.resolved()
        inputs = TrainingInputs.of(data, execution)  # one copy of the training split for all the seeds
        self.paths = [TrainingPath(model, data, plan, seed, execution, inputs=inputs)
                      for model, seed in zip(models, self.seeds)]
        first = self.paths[0]
        self.execution, self.normalized_by_loader = first.execution, first.normalized_by_loader
        self.alive = [True] * len(self.seeds)

    @property
    def loaders(self) -> list[datasets.EpochLoader]:
        return [path.loader for path in self.paths]

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]], lrs: list[float]) -> None:
        """One iteration of every seed still training: seed k's batch `batches[k]` at learning rate `lrs[k]`."""
        for index, (path, (images, labels), lr) in enumerate(zip(self.paths, batches, lrs)):
            if self.alive[index] and not path.step(images, labels, lr, finite_only=True):
                self.alive[index] = False

    @property
    def images_seen(self) -> int:
        """Training images of each seed since the last `seed_totals` (a frozen seed's stop)."""
        return max(path.seen for path in self.paths)

    def seed_totals(self) -> list[tuple[float, float]]:
        """Each seed's mean training loss and error (%) since the last call (NaN for a seed frozen before it)."""
        return [path.totals() if path.seen else (math.nan, math.nan) for path in self.paths]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Every seed's logits [K, N, classes] on one batch of evaluation images, in evaluation mode."""
        execution = self.execution
        inputs = self.paths[0].normalizer(images, execution.memory_format)
        stacked = []
        for path in self.paths:
            path.model.eval()
            with torch.no_grad(), execution.autocast():
                logits = path.evaluator(inputs)
            path.model.train()
            stacked.append(logits.to(torch.promote_types(logits.dtype, torch.float32)))
        return torch.stack(stacked)

    def seed_evaluation(self, split: datasets.Split, limit: int = 0) -> list[tuple[float, float]]:
        return evaluate_together(self.paths, split, limit)

    def seed_state(self, index: int) -> tuple[dict, dict]:
        """Seed `index`'s net and optimizer as its run alone's checkpoint holds them, copied (as ArrayPath's):
        torch's load_state_dict keeps a momentum buffer it is given, which would then be shared."""
        return copy.deepcopy(self.paths[index].seed_state(0))

    def load_seed(self, index: int, model_state: dict, optimizer_state: dict) -> None:
        self.paths[index].load_seed(0, model_state, optimizer_state)

    def freeze(self, index: int) -> None:
        """Seed `index` takes no more steps (its run has diverged, or finished while the others go on)."""
        self.alive[index] = False


class ArrayPath:
    """The seeds of one spec trained together as one model: a run array (HFTA, Wang et al., MLSys 2021).

    Every parameter and buffer carries a leading seed dimension (torch.func.stack_module_state of the seeds'
    own nets, each initialised as its run alone is), and `vmap(functional_call)` runs the K nets on K batches
    at once: convolutions become one grouped convolution, batch norm normalises the stacked channels with
    each seed's own running statistics (stacked buffers are what make its in-place update legal under vmap),
    and `variants/` (or timm) builds the net unchanged. Each seed reads its own EpochLoader, the stream its run
    alone reads, and takes its own learning rate (the deep nets' warm-up ends per seed). The loss is the sum of
    the seeds' mean losses, so each seed gets exactly its own gradient, and `ArraySGD` steps them all.

    A seed whose loss is not finite stops changing at that step (a mask on the device, no host sync): its
    run is recorded diverged at the next log point while the others go on. `seed_state` and `load_seed` read
    and write one seed in a run alone's checkpoint format (the net's state_dict, torch SGD's), so an array
    and a run alone resume each other's checkpoints. Evaluation runs every seed on one shared batch.
    """

    def __init__(self, models: list[nn.Module], data: datasets.Data, plan: recipes.Plan, seeds: tuple[int, ...],
                 execution: Execution):
        from torch.func import functional_call, stack_module_state, vmap

        if len(models) != len(seeds) or not seeds:
            raise ValueError(f"an array needs one net per seed: {len(models)} nets for seeds {seeds}")
        execution = execution.resolved()
        device = execution.device
        execution.configure_kernels()
        self.execution, self.plan, self.seeds = execution, plan, tuple(seeds)
        self.eval_transform = data.eval_transform
        models = [model.to(device, memory_format=execution.memory_format) for model in models]
        # A run alone's optimizer on the first net, never stepped: the parameter groups its state_dict holds
        self._solo_groups = solo_sgd(models[0], plan, device).state_dict()["param_groups"]
        params, self.buffers = stack_module_state(models)
        self.params = params  # leaves of shape [K, ...] that require grad
        self.state_keys = list(models[0].state_dict())
        self.base = copy.deepcopy(models[0]).to("meta")  # the structure functional_call runs, without storage
        groups = parameter_groups(models[0], plan.optimizer)
        self.parameter_order = [name for group in groups for name in group["names"]]  # torch's state numbering
        sgd = plan.optimizer
        self.optimizer = ArraySGD([group | {"params": [params[name] for name in group["names"]]} for group in groups],
                                  momentum=sgd.momentum, nesterov=sgd.nesterov)
        inputs = TrainingInputs.of(data, execution)
        self.normalizer, self.normalized_by_loader = inputs.normalizer, inputs.normalized_by_loader
        self.loaders = [inputs.loader(plan, seed, device) for seed in self.seeds]
        label_smoothing = plan.label_smoothing
        base = self.base

        def logits_of(params, buffers, images):
            return functional_call(base, (params, buffers), (images,))

        def loss_and_logits(params, buffers, images, labels):
            logits = logits_of(params, buffers, images)
            return F.cross_entropy(logits, labels, label_smoothing=label_smoothing), logits

        self.forward = execution.compiled(vmap(loss_and_logits))
        # evaluation: every seed on the same images (in_dims None: the batch is not stacked)
        self.evaluator = execution.compiled(vmap(logits_of, in_dims=(0, 0, None)))
        count = len(self.seeds)
        self.last_lrs = [plan.schedule.lr] * count
        self.alive = torch.ones(count, dtype=torch.bool, device=device)
        self.loss_sum = torch.zeros(count, device=device)
        self.wrong = torch.zeros(count, device=device, dtype=torch.long)
        self.seen = 0

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """One seed's training batch as the network takes it (TrainingPath.inputs)."""
        return images if self.normalized_by_loader else self.normalizer(images, self.execution.memory_format)

    def train_step(self, batches: list[tuple[torch.Tensor, torch.Tensor]], lrs: list[float]) -> None:
        """One iteration of every seed: seed k's batch `batches[k]` at learning rate `lrs[k]`."""
        images = torch.stack([self.inputs(seed_images) for seed_images, _ in batches])
        labels = torch.stack([seed_labels for _, seed_labels in batches])
        with self.execution.autocast():
            losses, logits = self.forward(self.params, self.buffers, images, labels)
        self.alive &= torch.isfinite(losses.detach())
        self.optimizer.zero_grad()
        losses.sum().backward()
        lr = torch.tensor(lrs, dtype=torch.float64).to(self.execution.device, non_blocking=True)
        self.optimizer.step(lr, self.alive)
        self.last_lrs = list(lrs)  # each seed's, as its run alone's SGD param_groups hold the last one
        self.loss_sum += losses.detach().float() * labels.shape[1]
        self.wrong += (logits.detach().argmax(-1) != labels).sum(1)
        self.seen += labels.shape[1]

    @property
    def images_seen(self) -> int:
        """Training images of each seed since the last `seed_totals`."""
        return self.seen

    def seed_totals(self) -> list[tuple[float, float]]:
        """Each seed's mean training loss and error (%) since the last call: the host waits for the device."""
        losses, wrong = self.loss_sum.tolist(), self.wrong.tolist()
        totals = [(loss / self.seen, 100.0 * errors / self.seen) for loss, errors in zip(losses, wrong)]
        self.loss_sum.zero_()
        self.wrong.zero_()
        self.seen = 0
        return totals

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Every seed's logits [K, N, classes] on one batch of evaluation images, in evaluation mode."""
        self.base.eval()
        try:
            with torch.no_grad(), self.execution.autocast():
                logits = self.evaluator(self.params, self.buffers, self.normalizer(images, self.execution.memory_format))
            return logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 autocast's up to fp32
        finally:
            self.base.train()

    def seed_evaluation(self, split: datasets.Split, limit: int = 0) -> list[tuple[float, float]]:
        """Each seed's mean loss and error (%) on the first `limit` images of `split` (0: all)."""
        device = self.execution.device
        count = min(limit or len(split), len(split))
        loss_sum = torch.zeros(len(self.seeds), device=device)
        wrong = torch.zeros(len(self.seeds), device=device, dtype=torch.long)
        for images, labels in datasets.eval_batches(split, self.execution.eval_batch, device, count,
                                                    self.eval_transform, pad=self.execution.pads_evaluation):
            logits = self.logits(images)[:, :len(labels)]
            for k in range(len(self.seeds)):  # each seed's sum as a run alone takes it
                loss_sum[k] += F.cross_entropy(logits[k], labels, reduction="sum")
            wrong += (logits.argmax(-1) != labels).sum(1)
        return [(loss / count, 100.0 * errors / count) for loss, errors in zip(loss_sum.tolist(), wrong.tolist())]

    def seed_state(self, index: int) -> tuple[dict, dict]:
        """Seed `index`'s net and optimizer as a run alone's checkpoint holds them (state_dicts)."""
        stacked = self.params | self.buffers
        model_state = {key: stacked[key][index].detach().clone() for key in self.state_keys}
        buffers = self.optimizer.momentum_buffers
        state = {number: {"momentum_buffer": buffers[name][index].clone()}
                 for number, name in enumerate(self.parameter_order) if buffers.get(name) is not None}
        groups = copy.deepcopy(self._solo_groups)
        for group in groups:
            group["lr"] = self.last_lrs[index]
        return model_state, {"state": state, "param_groups": groups}

    def load_seed(self, index: int, model_state: dict, optimizer_state: dict) -> None:
        """Seed `index` from a run alone's (or an array's) checkpoint."""
        stacked = self.params | self.buffers
        missing = [key for key in self.state_keys if key not in model_state]
        if missing:
            raise ValueError(f"the checkpoint has no {missing[0]}: it is not of this net")
        with torch.no_grad():
            for key in self.state_keys:
                stacked[key][index].copy_(model_state[key])
        self.last_lrs[index] = optimizer_state["param_groups"][0]["lr"]
        params = self.params
        buffers = self.optimizer.momentum_buffers
        for number, entry in optimizer_state["state"].items():
            name = self.parameter_order[int(number)]
            if buffers.get(name) is None:
                buffers[name] = torch.zeros_like(params[name])
            buffers[name][index].copy_(entry["momentum_buffer"])

    def freeze(self, index: int) -> None:
        """Seed `index` changes no more (its run has diverged, or finished while the others go on)."""
        self.alive[index] = False


ARRAY_PATHS = {"fused": ArrayPath, "in-turn": InTurnPath}  # --array-mode: Execution.array_mode


def array_path(models: list[nn.Module], data: datasets.Data, plan: recipes.Plan, seeds: tuple[int, ...],
               execution: Execution):
    """The run array of `seeds` in the execution's array mode: fused (ArrayPath) or in turn (InTurnPath)."""
    return ARRAY_PATHS[execution.resolved().array_mode](models, data, plan, seeds, execution)


class ArraySGD:
    """torch.optim.SGD's update (momentum, dampening 0, weight decay, Nesterov), step for step, on stacked
    parameters [K, ...] with a learning rate per seed and a mask of the seeds still training: a masked seed's
    gradient counts as zero and its learning rate as zero, so its parameters stay exactly as they are (torch's
    fused SGD takes one scalar learning rate)."""

    def __init__(self, groups: list[dict], momentum: float, nesterov: bool):
        self.groups, self.momentum, self.nesterov = groups, momentum, nesterov
        self.momentum_buffers: dict[str, torch.Tensor] = {}  # by parameter name: from `step`, or a checkpoint

    def zero_grad(self) -> None:
        for group in self.groups:
            for param in group["params"]:
                param.grad = None

    @torch.no_grad()
    def step(self, lr: torch.Tensor, alive: torch.Tensor) -> None:
        lr = torch.where(alive, lr, torch.zeros_like(lr))
        for group in self.groups:
            for name, param in zip(group["names"], group["params"]):
                if param.grad is None:
                    continue
                shape = (-1,) + (1,) * (param.ndim - 1)  # per seed, broadcast over the parameter's own dims
                grad = torch.where(alive.view(shape), param.grad, 0.0)
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                if self.momentum:
                    buffer = self.momentum_buffers.get(name)
                    if buffer is None:  # the first step: torch's SGD starts the buffer at the gradient
                        buffer = self.momentum_buffers[name] = grad.clone()
                    else:
                        buffer.mul_(self.momentum).add_(grad)
                    grad = grad.add(buffer, alpha=self.momentum) if self.nesterov else buffer
                param.sub_(grad * lr.view(shape).to(param.dtype))


def _sum_over_ranks(*tensors: torch.Tensor) -> None:
    import torch.distributed as dist

    for tensor in tensors:
        dist.all_reduce(tensor)


def _running_stats_from_rank0(model: nn.Module) -> None:
    """Rank 0's batch-norm running statistics on every rank: the ones its checkpoints hold."""
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def parameter_groups(model: nn.Module, sgd: recipes.Optimizer, *, leading: int = 0) -> list[dict]:
    """SGD's parameter groups by name: all parameters in one; with `no_bn_decay`, BN weights and every bias
    (the 1-d tensors) apart, without weight decay (Bag of Tricks §3.1). `leading`: dimensions in front of
    each parameter's own (an array's seed dimension), not counted. The order is the model's, group by group:
    the order torch.optim numbers the parameters in its state_dict."""
    names = [name for name, _ in model.named_parameters()]
    if not sgd.no_bn_decay:
        return [{"names": names, "weight_decay": sgd.weight_decay}]
    shapes = dict(model.named_parameters())
    decayed = [name for name in names if shapes[name].ndim - leading > 1]
    exempt = [name for name in names if shapes[name].ndim - leading <= 1]
    return [{"names": decayed, "weight_decay": sgd.weight_decay}, {"names": exempt, "weight_decay": 0.0}]


def solo_sgd(model: nn.Module, plan: recipes.Plan, device: torch.device) -> torch.optim.SGD:
    """The optimizer of a run alone: torch's SGD with the recipe's settings and parameter groups."""
    sgd = plan.optimizer
    named = dict(model.named_parameters())
    groups = [{"params": [named[name] for name in group["names"]], "weight_decay": group["weight_decay"]}
              for group in parameter_groups(model, sgd)]
    # fused: one kernel for the whole update on CUDA; on the CPU the default loop measured the same.
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.SGD(groups, lr=plan.schedule.lr, momentum=sgd.momentum, weight_decay=sgd.weight_decay,
                           nesterov=sgd.nesterov, **fused)


@dataclass(frozen=True)
class TrainingInputs:
    """Where the training split lives (whole on the device, or streamed to it), its normaliser, and the
    augmentation that crops it (which normalises as it crops where it can: ImageNet-resolution data on the
    CPU). Built once per process: the seeds of an array share it, each with its own EpochLoader."""

    split: datasets.Split
    stream: bool
    normalizer: datasets.Normalizer
    augmentation: object
    normalized_by_loader: bool

    @classmethod
    def of(cls, data: datasets.Data, execution: Execution) -> "TrainingInputs":
        device = execution.device
        stream = not datasets.loader.resident(data.train, device, execution.placement, execution.device_share)
        train_split = data.train if stream else data.train.to(device)
        normalizer = datasets.Normalizer(train_split.images, data.normalize).to(device)
        fused = data.augmentation.normalizing(normalizer, execution.memory_format, device)
        return cls(train_split, stream, normalizer, fused or data.augmentation, fused is not None)

    def loader(self, plan: recipes.Plan, seed: int, device: torch.device,
               world: distributed.World = distributed.SOLO) -> datasets.EpochLoader:
        """Seed `seed`'s batches: its own order and augmentation draws, as in its run alone."""
        return datasets.EpochLoader(self.split, plan.inputs.batch_size, seed, self.augmentation, stream=self.stream,
                                    device=device, part=(world.rank, world.size))
