"""A run, resolved once: what a request asks for, validated and named, before anything is built.

A `Request` is what a user asks for, in the words of the command line: a spec string, a dataset, a recipe
(its name, or a `Recipe` from code), a scale, a seed and the overrides that change what is computed (a
validation split, the normalisation) or only how often it is recorded (the checkpoint interval). `resolve()`
turns it, in one step, into a `Run`: the spec parsed as asked, its canonical string, the dataset's
declaration, the recipe as written for that dataset and scale, and the run id. The command line, the suite,
`bench compare`, `bench perf` and the training child all take a `Run` from here, so a request is parsed,
validated and named once, and its id is the same everywhere.

The run id (`records.run_id`) hashes the canonical spec as asked, the dataset's name, the recipe's identity
and the seed. A recipe may change the net it trains: Bag of Tricks' zero-gamma sets the zero_init axis. The
records and W&B describe the net as trained (`Run.trained`), while the run id, the run's name and its W&B
group name the spec as asked, so the ids of earlier records, and of any request, do not change.

Once the data is known, `Run.plan(train_images)` resolves the recipe into the plan the run trains
(recipe.Plan: iterations only, read in parts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import variants

from . import data as datasets
from . import recipe as recipes
from . import records
from .errors import UserError


@dataclass(frozen=True)
class Request:
    """A run as asked for. `recipe` None: the dataset's default recipe."""

    spec: str | variants.Spec | variants.TimmSpec  # a spec string, or a spec parsed already (a suite's)
    dataset: str = "cifar10"  # a name of data.DATASETS, or folder:PATH
    recipe: str | recipes.Recipe | None = None
    scale: float = 1.0
    seed: int = 0
    val_size: int | None = None  # --val-split
    normalize: str | None = None
    checkpoint_every: int | None = None  # a cadence: recorded, not part of the run id

    def resolve(self) -> "Run":
        """The run this request amounts to, validated (a UserError or SpecError says what is wrong)."""
        if self.seed < 0:
            raise UserError(f"--seed {self.seed} is not allowed: it must be 0 or more")
        spec = variants.parse(self.spec) if isinstance(self.spec, str) else self.spec
        declared = datasets.info(self.dataset)
        if isinstance(self.recipe, recipes.Recipe):
            recipe = self.recipe if self.scale == 1.0 else self.recipe.scaled(self.scale)
        else:
            recipe = recipes.get(self.recipe or declared.default_recipe, self.scale, declared.budget, self.dataset)
        # the overrides that change results are part of the recipe, and so of the id
        changes = {name: value for name, value in (("val_size", self.val_size), ("normalize", self.normalize))
                   if value is not None}
        recipe = replace(recipe, **changes)
        if self.checkpoint_every is not None:  # checked now, not after the data is read
            recipe.check_checkpoint_every(self.checkpoint_every, option=True)
        canonical = variants.canonical(spec)
        return Run(self, spec, canonical, declared, recipe,
                   records.run_id(canonical, declared.name, recipe.identity(), self.seed))


@dataclass(frozen=True)
class Run:
    """A resolved request (see the module docstring)."""

    request: Request
    spec: variants.Spec | variants.TimmSpec  # as asked
    canonical: str  # the spec as asked, canonical: names the run, its records and its W&B group
    dataset: datasets.DatasetInfo
    recipe: recipes.Recipe  # as written for this dataset and scale, with the request's overrides
    run_id: str

    @property
    def seed(self) -> int:
        return self.request.seed

    @cached_property
    def trained(self) -> variants.Spec | variants.TimmSpec:
        """The net the recipe trains: the spec as asked, with zero-gamma where the recipe applies it. timm's
        ResNets start their blocks' last BN at zero already (zero_init_last), so a timm spec stays itself."""
        if self.recipe.zero_init and isinstance(self.spec, variants.Spec):
            return replace(self.spec, zero_init=True)
        return self.spec

    @property
    def trained_canonical(self) -> str:
        return variants.canonical(self.trained)

    def with_seed(self, seed: int) -> "Run":
        """The same run for another seed, without parsing anything again."""
        request = replace(self.request, seed=seed)
        if seed < 0:
            raise UserError(f"--seed {seed} is not allowed: it must be 0 or more")
        return replace(self, request=request,
                       run_id=records.run_id(self.canonical, self.dataset.name, self.recipe.identity(), seed))

    def plan(self, train_images: int) -> recipes.Plan:
        """What the run trains, once its training split is known: the recipe in iterations."""
        return self.recipe.resolve(train_images, self.request.checkpoint_every)

    def describe(self) -> str:
        """One line: what is trained, on what, with which recipe."""
        return (f"{self.canonical} on {self.request.dataset}, recipe {self.recipe.name} x{self.recipe.scale:g}, "
                f"seed {self.seed}")
