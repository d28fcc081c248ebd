"""Training recipes as data: the paper's CIFAR schedule (§4.2) and a smoke-sized one for tests.

The paper counts iterations, not epochs: lr 0.1, divided by 10 at 32k and 48k iterations, stop at 64k,
batch 128, SGD momentum 0.9, weight decay 1e-4. Nets of 110 layers and more start at lr 0.01 until the
training error is below 80% (about 400 iterations), then go back to 0.1. `scaled(F)` multiplies every
iteration count by F, keeping the schedule's shape, so a quick look and a full run are the same recipe.

Every field that decides what a run computes is part of its run id (`identity()`); fields that only set how
often something happens without changing any recorded number (the checkpoint interval) are recorded in
config.json but left out of the id, so changing them finds the same finished runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

from .errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str
    iterations: int = 64_000
    milestones: tuple[int, ...] = (32_000, 48_000)
    batch_size: int = 128
    lr: float = 0.1
    lr_decay: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # The paper's warm-up for very deep nets: lr `warmup_lr` while training error >= `warmup_until_error`,
    # for at most `warmup_iterations`, on nets of at least `warmup_min_depth` layers.
    warmup_min_depth: int = 110
    warmup_lr: float = 0.01
    warmup_until_error: float = 0.8
    warmup_iterations: int = 400
    normalize: str = "pixel"  # "pixel": the paper's per-pixel mean subtraction; "channel": mean/std per channel
    val_size: int = 0  # images held out of training as a validation split (the paper's is 5000)
    log_every: int = 100  # iterations between training-metric records (each one host sync)
    eval_points: int = 16  # evaluations of test (and val) error over the run, besides the final one
    eval_subset: int = 0  # evaluate intermediate points on this many test images (0: all)
    checkpoint_every: int = 2_000  # iterations between checkpoints: a cadence, not part of the run id
    scale: float = 1.0

    # Fields that change when something happens but no recorded number: recorded, not hashed.
    CADENCE_FIELDS: ClassVar[tuple[str, ...]] = ("checkpoint_every",)

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise UserError(f"the recipe has {self.iterations} iterations; it needs at least 1 (is --scale too small?)")
        if self.log_every < 1:
            raise UserError(f"log_every={self.log_every} is not allowed: it must be at least 1")
        if self.checkpoint_every < 1 or self.checkpoint_every % self.log_every:
            raise UserError(f"checkpoint_every={self.checkpoint_every} is not allowed: it must be a positive multiple "
                            f"of log_every={self.log_every}, so that checkpoints fall on log points")

    def scaled(self, factor: float) -> "Recipe":
        """The same schedule stretched or shrunk by `factor` (iterations, milestones, warm-up, checkpoints)."""
        if not (factor > 0 and math.isfinite(factor)):
            raise UserError(f"scale {factor} is not allowed: it must be a positive number")
        log_every = max(1, min(self.log_every, round(self.iterations * factor / 20)))

        def times(value: int) -> int:
            return max(1, round(value * factor))

        checkpoint_every = max(log_every, times(self.checkpoint_every) // log_every * log_every)
        return replace(
            self,
            iterations=times(self.iterations),
            milestones=tuple(times(m) for m in self.milestones),
            warmup_iterations=times(self.warmup_iterations),
            log_every=log_every,
            checkpoint_every=checkpoint_every,
            scale=self.scale * factor,
        )

    def lr_at(self, iteration: int, warming_up: bool) -> float:
        if warming_up:
            return self.warmup_lr
        # Rounded so that the recorded rates read 0.01 and 0.001, not 0.010000000000000002.
        return round(self.lr * self.lr_decay ** sum(iteration >= m for m in self.milestones), 12)

    @property
    def eval_every(self) -> int:
        """Iterations between evaluations: a multiple of log_every, since evaluations happen at log points."""
        return max(self.log_every, self.iterations // self.eval_points // self.log_every * self.log_every)

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The fields that decide what a run computes, for its run id. Cadence fields are set to the value
        the registered recipe of this name and scale has (removed for other recipes), whatever this recipe
        says: so ids do not depend on them, and the ids of runs recorded before they were set apart stay
        the same (those runs were hashed with exactly that value)."""
        fields = self.to_dict()
        default = get(self.name, self.scale) if self.name in RECIPES else None
        for name in self.CADENCE_FIELDS:
            if default is None:
                del fields[name]
            else:
                fields[name] = getattr(default, name)
        return fields


RECIPES = {
    "paper": Recipe(name="paper"),
    "smoke": Recipe(
        name="smoke",
        iterations=40,
        milestones=(20, 30),
        batch_size=64,
        warmup_iterations=4,
        log_every=5,
        eval_points=4,
        eval_subset=500,
        checkpoint_every=20,
    ),
}


def get(name: str, scale: float = 1.0) -> Recipe:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    return recipe if scale == 1.0 else recipe.scaled(scale)
