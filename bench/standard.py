"""The standard PyTorch training recipe, as most public ResNet repositories write it: the baseline that
`bench perf` measures the suite's own training path against (and benchmarks/accuracy_ab.py trains with).

After akamaster/pytorch_resnet_cifar10 and PyTorch's ImageNet example: a Dataset that hands out PIL images
(CIFAR from its arrays, as torchvision's CIFAR10 does; class folders through torchvision's ImageFolder over
the original files: the dataset's reader says which, `standard_dataset`), the torchvision transforms of the
dataset's own augmentation (`RandomHorizontalFlip` + `RandomCrop(32, padding=4)` for CIFAR,
`RandomResizedCrop` + `RandomHorizontalFlip` for folders; `Resize` + `CenterCrop` to evaluate them),
`ToTensor`, `Normalize` by channel, a DataLoader with worker processes, an fp32 NCHW eager model, and
`.item()` on the loss every step. It computes what the suite computes (the same augmentation, SGD with
momentum and weight decay, the same schedule) by the usual route, normalising by channel (the suite's
`--normalize channel`); the suite never trains with it.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

import variants

from . import data as datasets
from . import recipe as recipes


def default_workers() -> int:
    """One loader worker per core this process may use: the usual advice, and what `bench perf` uses."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def transform(data: datasets.Data, train: bool):
    """torchvision's twin of the dataset's augmentation (training) or evaluation transform, then ToTensor and
    Normalize with the training split's per-channel mean and std (the suite's statistics: the same inputs)."""
    from torchvision import transforms as T

    stats = datasets.Normalizer(data.train.images, "channel")
    steps = data.augmentation if train else data.eval_transform
    return T.Compose([*(steps.torchvision_steps(data.image_size) if steps is not None else []), T.ToTensor(),
                      T.Normalize(stats.mean.flatten().tolist(), stats.std.flatten().tolist())])


def loader_for(data: datasets.Data, train: bool, batch_size: int, workers: int, device: torch.device,
               seed: int = 0, persistent: bool = False, limit: int = 0) -> DataLoader:
    """The standard loader of the dataset's training or evaluation split (its first `limit` images, 0: all)."""
    images = data.reader.standard_dataset(data, train, transform(data, train))
    if limit:
        images = Subset(images, range(min(limit, len(images))))
    return DataLoader(images, batch_size=batch_size, shuffle=train, drop_last=train, num_workers=workers,
                      pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
                      persistent_workers=persistent and workers > 0)


def endless(batches: DataLoader):
    """Batches of epoch after epoch (a fresh pass over the loader, workers restarted, as each epoch does)."""
    while True:
        yield from batches


class StandardPath:
    """fp32, NCHW, eager: the model and optimizer as the standard recipe sets them up."""

    def __init__(self, model: nn.Module, plan: recipes.Plan, device: torch.device):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the recipe's repositories set it
        self.device = device
        self.model = model.to(device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=plan.schedule.lr, momentum=plan.optimizer.momentum,
                                         weight_decay=plan.optimizer.weight_decay)

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


def train(spec: str, data: datasets.Data, plan: recipes.Plan, seed: int, device: torch.device,
          workers: int | None = None) -> dict:
    """Train `spec` with the standard recipe on the plan's schedule (iterations, milestones, the deep-net
    warm-up); returns the final test error and the training images/s. For side-by-side accuracy checks."""
    workers = default_workers() if workers is None else workers
    torch.manual_seed(seed)
    parsed = variants.parse(spec)
    path = StandardPath(variants.create(parsed, num_classes=data.num_classes), plan, device)
    train_batches = endless(loader_for(data, True, plan.inputs.batch_size, workers, device, seed))
    schedule, warmup = plan.schedule, plan.schedule.deep_net_warmup
    warming_up = warmup.applies_to(getattr(parsed, "depth", 0))
    started = time.perf_counter()
    for iteration in range(plan.iterations):
        images, labels = next(train_batches)
        _, error = path.step(images, labels, schedule.lr_at(iteration, warming_up))
        if warming_up and (iteration + 1 >= warmup.iterations or error < 100 * warmup.until_error):
            warming_up = False
    train_seconds = time.perf_counter() - started
    test_loss, test_error = path.evaluate(loader_for(data, False, 1000, workers, device))
    return {"spec": variants.canonical(parsed), "seed": seed, "iterations": plan.iterations, "test_error": test_error,
            "test_loss": test_loss, "train_img_s": plan.iterations * plan.inputs.batch_size / train_seconds,
            "train_seconds": train_seconds}
