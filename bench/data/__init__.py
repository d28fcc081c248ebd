"""The datasets the suite trains on, behind one interface: the runner, suite, perf and reports ask only this.

Each dataset is declared once in `DATASETS` (classes, its own image size, the reader that reads it, which
recipes apply to it and at what budget) and read by its reader into a `Data` (core.py): uint8 splits, the
training augmentation and the evaluation transform, all run on the device (augmentation.py, loader.py).
A reader (`core.Reader`: `cifar.READER`, `folder.READER`) is everything the rest of the code needs to know
about a kind of data: how to read it, whether its images come at one size, and how the standard PyTorch
recipe reads the same data for `bench perf`'s baseline; nothing outside the readers asks which one it is.

- `cifar10`, `cifar100`: the paper's §4.2 CIFAR (cifar.py): 32x32, pad-and-crop.
- `imagenette`, `imagewoof`: fast.ai's 10-class ImageNet subsets, any of their 160 px, 320 px or full
  releases, downloaded when missing; `imagenet`: ILSVRC2012 in class folders, never downloaded;
  `folder:PATH`: any folder in that layout (folder.py). ImageNet-resolution: random-resized crops,
  resize-and-centre-crop evaluation, channel normalisation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import cifar, folder
from .augmentation import augment, draw_augmentation
from ..errors import UserError
from .core import Data, DataError, DatasetInfo, Reader, Split
from .loader import EpochLoader, epoch_generator, eval_batches

__all__ = [
    "DATASETS", "Data", "DataError", "DatasetInfo", "EpochLoader", "Normalizer", "Reader", "Source", "Split",
    "augment", "draw_augmentation", "epoch_generator", "eval_batches", "info", "load", "names",
]

FOLDER_PREFIX = "folder:"
FASTAI = "https://s3.amazonaws.com/fast-ai-imageclas/"


def _fastai(name: str, title: str, stem: str) -> DatasetInfo:
    return DatasetInfo(name, title, folder.READER, 10, 128, "imagenette", "bot",
                       releases=(f"{stem}-160", f"{stem}-320", stem), url=FASTAI + "{release}.tgz")


DATASETS = {
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", cifar.READER, 10, cifar.IMAGE_SHAPE[-1], "cifar", "paper"),
    "cifar100": DatasetInfo("cifar100", "CIFAR-100", cifar.READER, 100, cifar.IMAGE_SHAPE[-1], "cifar", "paper"),
    "imagenette": _fastai("imagenette", "Imagenette", "imagenette2"),
    "imagewoof": _fastai("imagewoof", "Imagewoof", "imagewoof2"),
    "imagenet": DatasetInfo("imagenet", "ImageNet (ILSVRC2012)", folder.READER, 1000, 224, "imagenet", "imagenet",
                            releases=("imagenet", "ILSVRC2012")),
}


def names() -> str:
    return ", ".join(DATASETS) + f", {FOLDER_PREFIX}PATH"


def info(dataset: str) -> DatasetInfo:
    """The declaration of a dataset name (or of `folder:PATH`); a user error naming the choices otherwise."""
    if dataset in DATASETS:
        return DATASETS[dataset]
    if dataset.startswith(FOLDER_PREFIX) and dataset[len(FOLDER_PREFIX):]:
        path = Path(dataset[len(FOLDER_PREFIX):]).expanduser()
        readable = re.sub(r"[^A-Za-z0-9]+", "-", path.resolve().name).strip("-") or "root"
        return DatasetInfo(f"folder-{readable}", f"{path} (class folders)", folder.READER, None, 128, "imagenette",
                           "bot", path=str(path))
    raise DataError(f"unknown dataset {dataset!r}; choose one of: {names()} "
                    f"(a folder with train/<class>/ and val/<class>/ image folders)")


def load(dataset: str, data_dir: str | os.PathLike = "data", download: bool = True, val_size: int = 0, *,
         image_size: int = 0, normalize: str | None = None, crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3),
         skip_corrupt: bool = False, cache_dir: str | os.PathLike | None = None, say=None) -> Data:
    """Read a dataset as `Data`, with its reader: CIFAR from DATA_DIR/<its folder>; a folder dataset from
    DATA_DIR (itself, or a release folder inside it) or, for folder:PATH, from PATH; `image_size` 0 is the
    dataset's own."""
    declared = info(dataset)
    return declared.reader.load(declared, Path(data_dir), download=download, val_size=val_size,
                                image_size=image_size or declared.image_size, normalize=normalize,
                                crop_scale=crop_scale, crop_ratio=crop_ratio, skip_corrupt=skip_corrupt,
                                cache_dir=cache_dir, say=say)


@dataclass(frozen=True)
class Source:
    """Where a run reads its dataset and how: the data folder, the folder for a decoded cache (None: beside the
    data), whether a missing dataset is downloaded, whether images that do not decode are left out."""

    data_dir: str | os.PathLike = "data"
    cache_dir: str | os.PathLike | None = None
    download: bool = True
    skip_corrupt: bool = False

    def load(self, dataset: str, inputs, say=None) -> Data:
        """`dataset` as a recipe's `Inputs` ask for it (size, normalisation, crops, validation split)."""
        return load(dataset, self.data_dir, self.download, inputs.val_size, image_size=inputs.image_size,
                    normalize=inputs.normalize, crop_scale=inputs.crop_scale, crop_ratio=inputs.crop_ratio,
                    skip_corrupt=self.skip_corrupt, cache_dir=self.cache_dir, say=say)


# ---- normalisation: the network's input from uint8 levels -------------------------------------------------

STATISTICS_CHUNK = 5000
STATISTICS_LIMIT = 100_000  # above this many training images (ImageNet), statistics come from a sample
STATISTICS_SAMPLE = 10_000


class Normalizer:
    """Maps uint8 images to the network's input: the paper's per-pixel mean subtraction, or per-channel
    mean/std. Statistics come from the training split only."""

    MODES = ("pixel", "channel")

    def __init__(self, train_images: torch.Tensor, mode: str = "pixel"):
        if mode not in self.MODES:
            raise UserError(f"normalize={mode} is not allowed; choose one of: {', '.join(self.MODES)}")
        if len(train_images) > STATISTICS_LIMIT:
            # ImageNet's 1.28M images (a memory-mapped cache) for 6 numbers: an evenly spaced sample of a
            # cache stored in random order is a random sample.
            train_images = train_images[:: len(train_images) // STATISTICS_SAMPLE]
        # Sums in float64 over chunks of the split: a float copy of all 50k images would be 614 MB on the
        # training device, for statistics that are 3 (or 3x32x32) numbers.
        count = len(train_images)
        device = train_images.device
        per_pixel = torch.zeros(train_images.shape[1:], dtype=torch.float64, device=device)
        squares = torch.zeros(train_images.shape[1], dtype=torch.float64, device=device)
        # STATISTICS_CHUNK images of 32x32, or as many pixels of larger ones (a float chunk stays ~60 MB)
        chunk_images = max(1, STATISTICS_CHUNK * 32 * 32 // (train_images.shape[2] * train_images.shape[3]))
        for chunk in train_images.split(chunk_images):
            levels = chunk.float()
            per_pixel += levels.sum(dim=0).double()  # exact: at most 5000 x 255 < 2^24 per pixel
            if mode == "channel":
                squares += levels.square().sum(dim=(0, 2, 3), dtype=torch.float64)
        per_pixel, squares = per_pixel / 255, squares / 255**2
        if mode == "pixel":
            self.mean = (per_pixel / count).float().unsqueeze(0)
            self.std = torch.ones(1, device=device)
        else:
            values = count * train_images.shape[2] * train_images.shape[3]
            total = per_pixel.sum(dim=(1, 2))
            variance = (squares - total.square() / values) / (values - 1)  # unbiased, as torch.std
            self.mean = (total / values).float().view(1, -1, 1, 1)
            self.std = variance.sqrt().float().view(1, -1, 1, 1)
        self.mode = mode

    def to(self, device: torch.device) -> "Normalizer":
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def __call__(self, images: torch.Tensor, memory_format=torch.contiguous_format) -> torch.Tensor:
        """uint8 levels (or float levels in 0..255, as the resized crops are) to the network's input."""
        if self.mode == "pixel" and images.shape[1:] != self.mean.shape[1:]:
            raise UserError(f"per-pixel normalisation needs the images at their stored size "
                            f"{tuple(self.mean.shape[2:])}, not {tuple(images.shape[2:])}: use normalize=channel")
        # One float copy in the wanted layout, then in place: the same arithmetic as (x / 255 - mean) / std,
        # without the three fresh batch-sized tensors (on the CPU each costs page faults: 12 against 4 ms for
        # 64 images of 128 px).
        out = torch.empty(images.shape, dtype=torch.float32, device=images.device, memory_format=memory_format)
        return out.copy_(images).div_(255).sub_(self.mean).div_(self.std)
