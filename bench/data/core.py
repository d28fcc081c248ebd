"""What every dataset hands the runner: uint8 splits, and what turns them into the network's input.

A `Split` is uint8 images (N, 3, S, S) and int64 labels: on the host (for the folder datasets a memory-mapped
cache file), or moved whole onto the training device. `Data` is a loaded dataset: its splits, the training
augmentation, the evaluation transform and the sizes they produce, and what config.json should say about it.
A `DatasetInfo` declares a dataset, and its `Reader` is the one place that knows that kind of data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from ..errors import UserError


class DataError(UserError):
    """The dataset is missing, unreadable or not what it claims to be; the message says which file and why."""


@dataclass
class Split:
    images: torch.Tensor  # uint8, (N, 3, S, S)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> "Split":
        return Split(self.images[indices], self.labels[indices])

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()


class Reader(Protocol):
    """A kind of data (cifar.READER: the python-pickle batches; folder.READER: class folders of image files)."""

    # Whether the dataset's images come at one size (CIFAR's 32x32): pages then name the dataset alone, and
    # `bench perf` times it with the CIFAR nets' defaults; otherwise a recipe picks the resolution.
    one_size: bool
    # How the standard PyTorch recipe reads this data, in words, for `bench perf`'s table.
    standard_words: str

    def load(self, declared: "DatasetInfo", data_dir: Path, *, download: bool, val_size: int, image_size: int,
             normalize: str | None, crop_scale, crop_ratio, skip_corrupt: bool,
             cache_dir: str | os.PathLike | None, say) -> "Data": ...

    def standard_dataset(self, data: "Data", train: bool, transform):
        """The training (or evaluation) split as the standard recipe reads it: a torch Dataset of (transformed
        image, label), for `bench perf`'s baseline (standard.py)."""
        ...


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # as in run ids and records
    title: str
    reader: Reader
    num_classes: int | None  # None: as many as the folder has
    image_size: int  # training crop and evaluation size unless the recipe sets one
    budget: str  # the row of recipe.BUDGETS that says which recipes apply, and how
    default_recipe: str
    releases: tuple[str, ...] = ()  # folder datasets: release folders looked for inside --data-dir
    url: str | None = None  # where a missing copy is downloaded from (a format string of the release)
    path: str | None = None  # folder:PATH: the folder itself


@dataclass
class Data:
    name: str  # the dataset's name in run ids and records
    num_classes: int
    train: Split
    test: Split
    val: Split | None = None
    image_size: int = 0  # side of the training crop and of the evaluation images (0: the stored size)
    augmentation: object = None  # see augmentation.py: draw(n, generator), apply(images, *drawn), normalizing(...)
    eval_transform: object = None  # uint8 stored images -> evaluation images at image_size (None: as stored)
    normalize: str = "pixel"
    classes: list[str] = field(default_factory=list)  # class names in label order, where the dataset has them
    details: dict = field(default_factory=dict)  # for config.json: folder, cache, skipped files, ...
    reader: Reader | None = None  # what read it (cifar.READER, folder.READER)

    def __post_init__(self) -> None:
        if not self.image_size:
            self.image_size = self.train.images.shape[-1]


def check_val_size(val_size: int, train_images: int) -> None:
    """A validation split must leave training images: 1 .. train_images - 1 held out (0: none)."""
    if not 0 < val_size < train_images:
        raise DataError(f"--val-split {val_size} is not allowed: hold out 1 to {train_images - 1} of the "
                        f"{train_images} training images, or 0 for no validation split")
