"""CIFAR-10/100 as the paper uses them (§4.2), held whole on the training device.

Reading: the standard python-pickle layout (`cifar-10-batches-py/`, `cifar-100-python/`) is read and
validated here rather than by torchvision, whose md5 check rejects re-packed copies. A corrupt or truncated
file is an error naming the file, never a silently smaller dataset.

Training data path (after airbench): each split is one uint8 tensor on the device. The paper's
augmentation, "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the padded image
or its horizontal flip", runs as batched tensor ops over a whole epoch at once; normalisation runs per
batch on the device. No DataLoader, no worker processes, no per-batch host-to-device copies. All
randomness of an epoch comes from a generator seeded by (seed, epoch), so any iteration's batch can be
rebuilt on resume without saving RNG streams.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

IMAGE_SHAPE = (3, 32, 32)
PAD = 4


@dataclass(frozen=True)
class DatasetLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int
    torchvision_class: str


DATASETS = {
    "cifar10": DatasetLayout(
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "labels", 10, "CIFAR10"
    ),
    "cifar100": DatasetLayout("cifar-100-python", ("train",), ("test",), "fine_labels", 100, "CIFAR100"),
}


class DataError(UserError):
    """The dataset is missing, unreadable or not what it claims to be; the message says which file and why."""


@dataclass
class Split:
    images: torch.Tensor  # uint8, (N, 3, 32, 32)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> "Split":
        return Split(self.images[indices], self.labels[indices])


@dataclass
class Cifar:
    name: str
    num_classes: int
    train: Split
    test: Split
    val: Split | None = None


def load(dataset: str, data_dir: str | os.PathLike, download: bool = True, val_size: int = 0) -> Cifar:
    """Read a CIFAR dataset from DATA_DIR/<standard folder>, downloading it with torchvision if missing.

    With val_size > 0, that many training images (a fixed random choice, the same for every seed and run)
    are held out as a validation split, as in the paper's 45k/5k split.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of: {', '.join(DATASETS)}")
    layout = DATASETS[dataset]
    folder = Path(data_dir) / layout.folder
    if not folder.is_dir():
        if not download:
            raise DataError(_missing_message(dataset, folder, "downloading is off"))
        _download(dataset, Path(data_dir), folder)
    train = _read_files(folder, layout.train_files, layout)
    test = _read_files(folder, layout.test_files, layout)
    val = None
    if val_size:
        if not 0 < val_size < len(train):
            raise DataError(f"a validation split of {val_size} images does not fit {len(train)} training images")
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        train, val = train.subset(order[val_size:].sort().values), train.subset(order[:val_size].sort().values)
    return Cifar(dataset, layout.num_classes, train, test, val)


def _missing_message(dataset: str, folder: Path, why: str) -> str:
    return (
        f"{dataset} not found: no folder {folder} ({why}). Put the standard python-version dataset there "
        f"(the folder inside {DATASETS[dataset].folder.replace('-batches-py', '').replace('-python', '')}-python.tar.gz "
        f"from https://www.cs.toronto.edu/~kriz/cifar.html), or pass --data-dir DIR with DIR/{folder.name} in it"
    )


def _download(dataset: str, root: Path, folder: Path) -> None:
    import torchvision

    try:
        getattr(torchvision.datasets, DATASETS[dataset].torchvision_class)(str(root), train=True, download=True)
    except Exception as error:  # no network, refused, disk full: all end the same way for the user
        raise DataError(_missing_message(dataset, folder, f"download failed: {error}")) from None
    if not folder.is_dir():
        raise DataError(_missing_message(dataset, folder, "download did not produce it"))


def _read_files(folder: Path, names: tuple[str, ...], layout: DatasetLayout) -> Split:
    images, labels = [], []
    expected = _images_per_batch(folder)
    for name in names:
        path = folder / name
        data, file_labels = _read_batch(path, layout)
        if expected is not None and name.startswith("data_batch") and len(data) != expected:
            raise DataError(f"{path}: {len(data)} images, but batches.meta says each training batch has {expected}")
        images.append(data)
        labels.append(file_labels)
    images_np = np.concatenate(images).reshape(-1, *IMAGE_SHAPE)
    return Split(torch.from_numpy(images_np), torch.from_numpy(np.concatenate(labels)).long())


def _images_per_batch(folder: Path) -> int | None:
    """CIFAR-10's batches.meta states the images per training batch (10000): a cut batch would not match."""
    path = folder / "batches.meta"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            meta = pickle.load(handle, encoding="latin1")
        return int(meta.get("num_cases_per_batch", meta.get(b"num_cases_per_batch")))
    except Exception:
        raise DataError(f"{path}: cannot be read as CIFAR metadata") from None


def _read_batch(path: Path, layout: DatasetLayout) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file missing from the {layout.folder} folder")
    try:
        with open(path, "rb") as handle:
            # latin1 reads both the original Python 2 pickles and Python 3 re-packs.
            batch = pickle.load(handle, encoding="latin1")
    except Exception as error:  # truncated or not a pickle: EOFError, UnpicklingError, ValueError, ...
        raise DataError(f"{path}: cannot be read as a CIFAR batch file ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    batch = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    missing = [key for key in ("data", layout.label_key) if key not in batch]
    if missing:
        raise DataError(f"{path}: missing entries {missing}; found {sorted(batch)}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, 3072); found {type(data).__name__} "
                        f"{getattr(data, 'dtype', '')} {shape}")
    labels = np.asarray(batch[layout.label_key])
    if len(labels) and labels.dtype.kind not in "iu":
        raise DataError(f"{path}: labels must be integers; found {labels.dtype}")
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise DataError(f"{path}: labels must lie in 0..{layout.num_classes - 1}; found {labels.min()}..{labels.max()}")
    return data, labels.astype(np.int64)


# ---- the device-resident training path -----------------------------------------------------------------

STATISTICS_CHUNK = 5000


class Normalizer:
    """Maps uint8 images to the network's input: the paper's per-pixel mean subtraction, or per-channel
    mean/std. Statistics come from the training split only."""

    MODES = ("pixel", "channel")

    def __init__(self, train_images: torch.Tensor, mode: str = "pixel"):
        if mode not in self.MODES:
            raise UserError(f"normalize={mode} is not allowed; choose one of: {', '.join(self.MODES)}")
        # Sums in float64 over chunks of the split: a float copy of all 50k images would be 614 MB on the
        # training device, for statistics that are 3 (or 3x32x32) numbers.
        count = len(train_images)
        per_pixel = torch.zeros(train_images.shape[1:], dtype=torch.float64, device=train_images.device)
        squares = torch.zeros(train_images.shape[1], dtype=torch.float64, device=train_images.device)
        for chunk in train_images.split(STATISTICS_CHUNK):
            levels = chunk.float()
            per_pixel += levels.sum(dim=0).double()  # exact: at most 5000 x 255 < 2^24
            if mode == "channel":
                squares += levels.square().sum(dim=(0, 2, 3), dtype=torch.float64)
        per_pixel, squares = per_pixel / 255, squares / 255**2
        if mode == "pixel":
            self.mean = (per_pixel / count).float().unsqueeze(0)
            self.std = torch.ones(1, device=train_images.device)
        else:
            values = count * train_images.shape[2] * train_images.shape[3]
            total = per_pixel.sum(dim=(1, 2))
            variance = (squares - total.square() / values) / (values - 1)  # unbiased, as torch.std
            self.mean = (total / values).float().view(1, -1, 1, 1)
            self.std = variance.sqrt().float().view(1, -1, 1, 1)
        self.mode = mode

    def __call__(self, images: torch.Tensor, memory_format=torch.contiguous_format) -> torch.Tensor:
        out = (images.float() / 255 - self.mean) / self.std
        return out.contiguous(memory_format=memory_format)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # Distinct, reproducible stream per (seed, epoch); independent of the device.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def draw_augmentation(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (n, 2) in 0..2*PAD (top, left within the padded image) and flip flags (n,)."""
    offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return offsets, flips


def augment(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Zero-pad by 4, crop 32x32 at `offsets`, mirror where `flips`: one gather for the whole batch."""
    n, channels, height, width = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
    rows = (offsets[:, 0, None] + torch.arange(height, device=device))[:, None, :, None]
    cols = offsets[:, 1, None] + torch.arange(width, device=device)
    cols = torch.where(flips[:, None], cols.flip(-1), cols)[:, None, None, :]
    index = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(channels, device=device)[None, :, None, None]
    return padded[index, channel, rows, cols]


class EpochLoader:
    """Batches of one epoch, shuffled and augmented on the device; `start` skips batches already done."""

    def __init__(self, split: Split, batch_size: int, seed: int):
        if len(split) < batch_size:
            raise DataError(f"batch size {batch_size} is larger than the {len(split)} images of the split")
        self.split = split
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = len(split) // batch_size  # drop the last partial batch, as the paper's iterations do

    def batches(self, epoch: int, start: int = 0):
        generator = epoch_generator(self.seed, epoch)
        device = self.split.labels.device
        # Drawn for the whole epoch up front (three small host-to-device copies per epoch, none per batch).
        order = torch.randperm(len(self.split), generator=generator).to(device)
        offsets, flips = (t.to(device) for t in draw_augmentation(len(self.split), generator))
        for step in range(start, self.steps_per_epoch):
            batch = order[step * self.batch_size: (step + 1) * self.batch_size]
            chosen = slice(step * self.batch_size, (step + 1) * self.batch_size)
            yield augment(self.split.images[batch], offsets[chosen], flips[chosen]), self.split.labels[batch]
