"""The standard PyTorch data recipes, as most public ResNet repositories write them: the baseline that
`bench perf` measures the suite's own training path against.

ImageNet-style datasets: torchvision's ImageFolder over the original JPEG files, RandomResizedCrop +
RandomHorizontalFlip + ToTensor + Normalize for training and Resize + CenterCrop for evaluation (PyTorch's
ImageNet example), in a DataLoader with worker processes. CIFAR:

After akamaster/pytorch_resnet_cifar10 and torchvision's CIFAR10 dataset: a Dataset that hands out PIL
images, `RandomHorizontalFlip`, `RandomCrop(32, padding=4)` (the images' own size), `ToTensor`, `Normalize` by channel, a
DataLoader with worker processes, an fp32 NCHW eager model, and `.item()` on the loss every step. It
computes what the suite computes (the paper's augmentation, SGD with momentum and weight decay, the same
schedule) by the usual route, normalising by channel (the suite's `--normalize channel`); the suite never
trains with it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import variants

from . import data as datasets
from . import recipe as recipes
from .data import augmentation as device_augment


def default_workers() -> int:
    """One loader worker per core this process may use: the usual advice, and what `bench perf` uses."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class PilCifar(Dataset):
    """Images as torchvision's CIFAR10 holds them (uint8 HWC in one array), handed out as PIL images."""

    def __init__(self, split: datasets.Split, transform):
        self.images = np.ascontiguousarray(split.images.permute(0, 2, 3, 1).numpy())
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def transforms(train_images: torch.Tensor, train: bool):
    from torchvision import transforms as T

    stats = datasets.Normalizer(train_images, "channel")  # the training split's per-channel mean and std
    normalize = T.Normalize(stats.mean.flatten().tolist(), stats.std.flatten().tolist())
    if not train:
        return T.Compose([T.ToTensor(), normalize])
    size = train_images.shape[-1]
    return T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(size, padding=4), T.ToTensor(), normalize])


def loader(split: datasets.Split, train_images: torch.Tensor, batch_size: int, workers: int, train: bool,
           device: torch.device, seed: int = 0, persistent: bool = False) -> DataLoader:
    return DataLoader(
        PilCifar(split, transforms(train_images, train)), batch_size=batch_size, shuffle=train, drop_last=train,
        num_workers=workers, pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
        persistent_workers=persistent and workers > 0,
    )


def folder_loader(data: datasets.Data, train: bool, batch_size: int, workers: int, device: torch.device,
                  seed: int = 0, persistent: bool = False, limit: int = 0) -> DataLoader:
    """PyTorch's ImageNet example over the dataset's original files (its train/ or val/ folder)."""
    from torch.utils.data import Subset
    from torchvision import datasets as folders
    from torchvision import transforms as T

    stats = datasets.Normalizer(data.train.images, "channel")  # the suite's statistics: the same inputs for both
    normalize = T.Normalize(stats.mean.flatten().tolist(), stats.std.flatten().tolist())
    size = data.image_size
    if train:
        crop = data.augmentation
        steps = [T.RandomResizedCrop(size, scale=crop.scale, ratio=crop.ratio), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(round(size / device_augment.EVAL_CROP_SHARE)), T.CenterCrop(size)]
    images = folders.ImageFolder(str(Path(data.details["folder"]) / ("train" if train else "val")),
                                 T.Compose([*steps, T.ToTensor(), normalize]))
    if limit:
        images = Subset(images, range(min(limit, len(images))))
    return DataLoader(images, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=workers,
                      pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
                      persistent_workers=persistent and workers > 0)


def loader_for(data: datasets.Data, train: bool, batch_size: int, workers: int, device: torch.device,
               seed: int = 0, persistent: bool = False, limit: int = 0) -> DataLoader:
    """The standard loader of the dataset's training or evaluation split (its first `limit` images, 0: all)."""
    if "folder" in data.details:
        return folder_loader(data, train, batch_size, workers, device, seed, persistent, limit)
    split = data.train if train else data.test
    if limit:
        split = datasets.Split(split.images[:limit], split.labels[:limit])
    return loader(split, data.train.images, batch_size, workers, train, device, seed, persistent)


def endless(batches: DataLoader):
    """Batches of epoch after epoch (a fresh pass over the loader, workers restarted, as each epoch does)."""
    while True:
        yield from batches


class StandardPath:
    """fp32, NCHW, eager: the model and optimizer as the standard recipe sets them up."""

    def __init__(self, model: nn.Module, plan: recipes.Recipe, device: torch.device):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the recipe's repositories set it
        self.device = device
        self.model = model.to(device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=plan.lr, momentum=plan.momentum,
                                         weight_decay=plan.weight_decay)

    def step(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> tuple[float, float]:
        """One iteration; returns the batch's loss and error (%), read back to the host as the recipe does."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        error = 100.0 * (logits.argmax(1) != labels).float().mean().item()
        return loss.item(), error

    def evaluate(self, batches, limit: int = 0) -> tuple[float, float]:
        """Mean loss and error (%) over the loader's batches (the first `limit` images when limit > 0)."""
        self.model.eval()
        loss_sum, wrong, count = 0.0, 0, 0
        with torch.no_grad():
            for images, labels in batches:
                images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
                logits = self.model(images)
                loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
                wrong += (logits.argmax(1) != labels).sum().item()
                count += len(labels)
                if limit and count >= limit:
                    break
        self.model.train()
        return loss_sum / count, 100.0 * wrong / count


def train(spec: str, data: datasets.Data, plan: recipes.Recipe, seed: int, device: torch.device,
          workers: int | None = None) -> dict:
    """Train `spec` with the standard recipe on the plan's schedule (iterations, milestones, warm-up);
    returns the final test error and the training images/s. For side-by-side accuracy checks."""
    workers = default_workers() if workers is None else workers
    torch.manual_seed(seed)
    parsed = variants.parse(spec)
    path = StandardPath(variants.create(parsed, num_classes=data.num_classes), plan, device)
    train_batches = endless(loader(data.train, data.train.images, plan.batch_size, workers, True, device, seed))
    warming_up = getattr(parsed, "depth", 0) >= plan.warmup_min_depth
    started = time.perf_counter()
    for iteration in range(plan.iterations):
        images, labels = next(train_batches)
        _, error = path.step(images, labels, plan.lr_at(iteration, warming_up))
        if warming_up and (iteration + 1 >= plan.warmup_iterations or error < 100 * plan.warmup_until_error):
            warming_up = False
    train_seconds = time.perf_counter() - started
    test_loss, test_error = path.evaluate(loader(data.test, data.train.images, 1000, workers, False, device))
    return {"spec": variants.canonical(parsed), "seed": seed, "iterations": plan.iterations, "test_error": test_error,
            "test_loss": test_loss, "train_img_s": plan.iterations * plan.batch_size / train_seconds,
            "train_seconds": train_seconds}
