"""What a training costs before it starts, in one line: the images to train, the multiply-adds, the speed this
device trains the net at (a few timed steps of a copy of it, on random images of the run's size), and the
time that makes; where that is long, the cheaper ways. A suite times its first net and scales the others by
their multiply-adds (a training step costs about three forward passes on any of these nets, so img/s falls
with MACs; shortcut and block choices move it by tens of percent, not by factors).

The timed steps run a plain SGD step on a net of their own, so the run itself (its weights, its random
streams) is untouched: a forecast never changes a result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .progress import duration

LONG = 30 * 60  # seconds: a forecast above this names the cheaper ways
TIMED_STEPS = 3  # after two untimed ones (allocations, oneDNN's and cuDNN's kernel choice)
MAX_TIMED_BATCH = 128  # on the CPU, img/s changes little above it; a smaller batch times faster


@dataclass(frozen=True)
class Speed:
    images_per_second: float
    how: str  # "3 timed steps of resnet20 on cpu"


def timed_speed(build: Callable[[], nn.Module], image_size: int, num_classes: int, batch_size: int, execution,
                name: str = "the net") -> Speed:
    """Training img/s of the net `build()` makes, on `execution`'s device, precision and memory format: a few
    SGD steps of a fresh one on random images, built with the global random state put back afterwards (the
    run's own model and streams are left as they were)."""
    device = execution.device
    batch = batch_size if device.type == "cuda" else min(batch_size, MAX_TIMED_BATCH)
    with torch.random.fork_rng(devices=[]):
        twin = build().to(device, memory_format=execution.memory_format).train()
    optimizer = torch.optim.SGD(twin.parameters(), lr=1e-3, momentum=0.9)
    own = torch.Generator().manual_seed(0)  # not the global streams, which the run's data order comes from
    images = torch.randn(batch, 3, image_size, image_size, generator=own).to(
        device, memory_format=execution.memory_format)
    labels = torch.randint(0, num_classes, (batch,), generator=own).to(device)

    def step():
        with execution.autocast():
            loss = F.cross_entropy(twin(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    started = time.perf_counter()
    for _ in range(2):  # untimed: the first steps allocate and choose kernels
        step()
    _sync(device)
    steps = TIMED_STEPS if time.perf_counter() - started < 2.0 else 1  # a slow net on the CPU: one step tells
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - started
    return Speed(steps * batch / seconds, f"{steps} timed step{'s' if steps > 1 else ''} of {name} on {device}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Work:
    """One run's training still to do: images, at `macs` multiply-adds per image's forward pass."""

    name: str
    images: int
    macs: int


def line(works: list[Work], speed: Speed | None, reference_macs: int, device: torch.device | None, *,
         parallel: int = 1, recipe: str = "", scale: float = 1.0) -> str:
    """'cost: ...' for a run or a suite: the work, the speed it expects and the time that makes (`parallel`
    runs at a time, each at `speed`), and where that is long, the cheaper ways than `recipe` at `scale`.
    Without a speed (runs on a Ray cluster), the work alone."""
    images = sum(work.images for work in works)
    tera = 3 * sum(work.images * work.macs for work in works) / 1e12  # forward + backward: about 3 forwards
    what = (f"{works[0].images:,} images of {works[0].name} ({works[0].macs / 1e6:,.0f}M MACs each)"
            if len(works) == 1 else
            f"{len(works)} runs, {images:,} images ({_macs_range(works)} MACs each)")
    if speed is None:
        return f"cost: {what}, about {_tera(tera)} TMACs to train; the ETA follows from the first runs' speed"
    # Seconds per image scale with the multiply-adds: the timed net's speed, at each run's MACs.
    seconds = sum(work.images * work.macs / reference_macs for work in works) / speed.images_per_second / parallel
    scaled = "" if len(works) == 1 else ", the others scaled by their MACs"
    at_once = f", {parallel} at a time" if parallel > 1 else ""
    words = (f"cost: {what}, about {_tera(tera)} TMACs to train; at {speed.images_per_second:,.0f} img/s "
             f"({speed.how}{scaled}{at_once}) that is about {duration(seconds)} of training steps")
    # What the timed steps leave out: on the smoke suite (40 iterations a run) a run's start, data and
    # evaluation took 3-4x its steps (2026-12-02: 4.3 min forecast, 17.8 min taken); on a real run, a few %.
    words += (" (evaluation and each run's start come on top" +
              (": most of a smoke run's time)" if recipe == "smoke" else ")"))
    if seconds > LONG:
        ways = [] if recipe == "smoke" else ["--recipe smoke checks the pipeline in minutes"]
        ways.append(f"--scale {scale / 10:g} trains a tenth of this (about {duration(seconds / 10)})")
        if device is not None and device.type == "cpu":
            ways.append("a GPU (--device cuda) trains these nets tens of times faster")
        words += "; cheaper: " + "; ".join(ways)
    return words


def _tera(tera: float) -> str:
    return f"{tera:,.0f}" if tera >= 100 else f"{tera:.2g}" if tera < 1 else f"{tera:.1f}"


def _macs_range(works: list[Work]) -> str:
    low, high = min(work.macs for work in works) / 1e6, max(work.macs for work in works) / 1e6
    return f"{low:,.0f}M" if round(low) == round(high) else f"{low:,.0f}M to {high:,.0f}M"
