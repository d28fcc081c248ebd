"""How a run executes, not what it computes: the device, precision, memory layout, compilation, data placement
and, under torchrun, the world; for a run array (paths.ArrayPath) the seeds trained together. Recorded in
config.json's `execution`, never part of the run id.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .tracking import warn

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
    # A run array: the seeds trained together in this process, each its own run; () alone.
    array_seeds: tuple[int, ...] = ()
    # How an array trains its seeds (paths.py): "fused", one net with a leading seed dimension (HFTA: K
    # convolutions as one grouped convolution), or "in-turn", each seed's own net stepped one after another in
    # each iteration, computing to the last bit what its run alone computes. "auto": fused on CUDA, where one
    # CIFAR net leaves the GPU almost idle; in turn on the CPU, whose convolutions are compute-bound (an array
    # of 3 resnet20 seeds fused ran 0.54x the img/s of its runs one after another: results/perf/cpu/array.md).
    array_mode: str = "auto"
    # cudnn's deterministic kernels, and no benchmark search: on a GPU, resume, stream against resident and a
    # retried Ray task then give the same bits (the default picks the fastest kernels, which differ at float
    # noise between processes). The CPU is deterministic either way.
    deterministic: bool = False
    # The share of the device this run is given (a suite's --jobs on one GPU, Ray's --gpus-per-run): the
    # training split stays whole on the device only when it fits in that share (data/loader.py), and an array
    # plans its seeds in it. Like the placement it decides, recorded in config.json's dataset section.
    device_share: float = 1.0
    # Where torch.compile's caches are (Inductor's FX graphs, AOT autograd, Triton kernels): set by the runner
    # under the results folder, which every worker of a suite shares (use_compile_cache). Recorded in
    # config.json's execution; not in `describe`, which a resumed run compares (a path changes no number).
    compile_cache: str = ""

    PRECISIONS = ("auto", "bf16", "fp32")
    COMPILE_MODES = ("auto", "off", "default", "reduce-overhead")
    ARRAY_MODES = ("auto", "fused", "in-turn")

    def resolved(self) -> "Execution":
        """The same settings with `auto` made concrete, and bf16 dropped where the device lacks it."""
        if self.precision not in self.PRECISIONS:
            raise UserError(f"precision {self.precision} is not allowed; choose one of: {', '.join(self.PRECISIONS)}")
        if self.compile not in self.COMPILE_MODES:
            raise UserError(f"compile {self.compile} is not allowed; choose one of: {', '.join(self.COMPILE_MODES)}")
        if self.array_mode not in self.ARRAY_MODES:
            raise UserError(f"--array-mode {self.array_mode} is not allowed; choose one of: {', '.join(self.ARRAY_MODES)}")
        if not 0 < self.device_share <= 1:
            raise UserError(f"--device-share {self.device_share:g} is not allowed: it must be above 0 and at most 1")
        if self.sync_bn and self.world_size > 1 and self.device.type != "cuda":
            raise UserError("--sync-bn needs CUDA ranks: torch's SyncBatchNorm runs on GPUs only")
        resolved = self
        if self.array_mode == "auto":
            resolved = replace(resolved, array_mode="fused" if self.device.type == "cuda" else "in-turn")
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
    def pads_evaluation(self) -> bool:
        """Whether evaluation pads its last batch to the full size: for a compiled net, where a new shape is a
        recompile (and under CUDA graphs a new graph); eager nets take any batch as it is."""
        return self.compile != "off"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> dict:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else cpu_name()
        return {
            "device": str(self.device), "device_name": name, "precision": self.precision,
            "memory_format": "channels_last" if self.channels_last else "contiguous", "compile": self.compile,
            "threads": torch.get_num_threads(), "world_size": self.world_size, "sync_bn": self.sync_bn,
            "deterministic": self.deterministic,
            **({"array_seeds": list(self.array_seeds), "array_mode": self.array_mode} if self.array_seeds else {}),
        }

    @staticmethod
    def same_numbers(described: dict, other: dict) -> bool:
        """Whether two `describe()`s compute the same numbers: equal, but for the seeds trained alongside in an
        array whose seeds take their steps in turn (each computes what its run alone computes)."""
        def numbers(entries: dict) -> dict:
            if entries.get("array_mode", "in-turn") != "in-turn":
                return entries
            return {key: value for key, value in entries.items() if key not in ("array_seeds", "array_mode")}
        return numbers(described) == numbers(other)

    def configure_kernels(self) -> None:
        """cudnn as this execution asks, before a training path builds anything: its benchmark search (fixed
        shapes: the fastest kernels, picked once per process), or deterministic kernels."""
        if self.device.type != "cuda":
            return
        torch.backends.cudnn.benchmark = not self.deterministic
        torch.backends.cudnn.deterministic = self.deterministic


COMPILE_CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


def use_compile_cache(folder: Path) -> str:
    """torch.compile's caches in `folder`, unless the user has chosen a place (TORCHINDUCTOR_CACHE_DIR): the
    default, torchinductor_<user> in the temporary directory, is one per container and per Ray node, so each
    would compile anew what another has compiled. Inductor reads the variable when it first compiles; Triton's
    kernels go below it. Returns the folder in use."""
    chosen = os.environ.get(COMPILE_CACHE_VARIABLE)
    if chosen:
        return chosen
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[COMPILE_CACHE_VARIABLE] = str(folder.resolve())
    return os.environ[COMPILE_CACHE_VARIABLE]


def _fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":  # native bf16 (Ampere on); the emulated kind on older GPUs is slower than fp32
        return torch.cuda.is_bf16_supported(including_emulation=False)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, hence looked up defensively
    return bool(amx and amx())


def cpu_name() -> str:
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

