"""Training and evaluation batches on the device, seeded and resumable.

A training split is held whole on the device when it fits (CIFAR's 150 MB, Imagenette's 0.7 GB at 160 px),
and otherwise streamed (ImageNet): read from its memory-mapped cache a window at a time, in large
contiguous chunks, into one of two pinned buffers by a background thread while the current window trains
(the next epoch's first window while this epoch's last one does), and copied to the GPU on a side stream
(`_Staging`). Either way an epoch's order is the same, so where the data lives changes no number:

- All randomness of an epoch comes from a generator seeded by (seed, epoch), drawn up front for the whole
  epoch: the order, then the augmentation's choices. Any iteration's batch can be rebuilt on resume
  without saving RNG streams.
- A split of at most `window` images (every CIFAR and Imagenette split) is shuffled whole. A larger one is
  cut into chunks of window/8 images; an epoch takes the chunks in a random order, eight at a time, and
  shuffles the images of each eight together. The caches are written in a fixed random order of the files
  (folder.py), so every chunk is already a random sample of the classes.
- In a data-parallel run (distributed.py) each rank takes its contiguous `part` of every batch of that same
  order, with the same augmentation draws: the ranks' parts at a step make up the single-process batch.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch

from .augmentation import PadCrop
from .core import DataError, Split

WINDOW_CHUNKS = 8
WINDOW_BYTES = 4 * 2**30  # images shuffled together (and resident at once, twice, when streaming)
PLACEMENTS = ("auto", "resident", "stream")
DEVICE_SHARE = 0.5  # `auto` keeps a split resident when it takes at most this share of the free memory


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # Distinct, reproducible stream per (seed, epoch); independent of the device.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def window_images(split: Split) -> int:
    """Images shuffled together: WINDOW_BYTES worth of the split's stored images."""
    per_image = split.images[0].numel() * split.images.element_size() if len(split) else 1
    return max(WINDOW_CHUNKS, WINDOW_BYTES // per_image)


def memory_of(device: torch.device) -> tuple[int, int]:
    """The free and total bytes of `device` (a GPU's memory; the CPU's RAM)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)
    import psutil

    memory = psutil.virtual_memory()
    return memory.available, memory.total


def budget(device: torch.device, share: float = 1.0) -> int:
    """The bytes a run given `share` of `device` may count on: its share of the whole, or what is free if that
    is less. Not the free memory alone: N runs that start together on one GPU each see it all free, and each
    would claim half of it."""
    free, total = memory_of(device)
    return int(min(free, share * total))


def fits(nbytes: int, device: torch.device, share: float = 1.0) -> bool:
    """Whether a split of `nbytes` may live whole on `device`: at most half of the run's budget there."""
    return nbytes <= DEVICE_SHARE * budget(device, share)


def resident(split: Split, device: torch.device, placement: str = "auto", share: float = 1.0) -> bool:
    if placement not in PLACEMENTS:
        raise DataError(f"data placement {placement!r} is not allowed; choose one of: {', '.join(PLACEMENTS)}")
    return placement == "resident" or (placement == "auto" and fits(split.nbytes, device, share))


class EpochLoader:
    """Batches of one epoch, shuffled and augmented on the device; `start` skips batches already done.

    With `stream=False` the split's images must already be where the batches are wanted (on the device);
    with `stream=True` they stay on the host and windows of them are copied to `device` as needed.
    `part=(index, parts)` yields only the index-th of `parts` equal slices of each batch (one rank's share)."""

    def __init__(self, split: Split, batch_size: int, seed: int, augmentation=None, *, window: int | None = None,
                 stream: bool = False, device: torch.device | None = None, part: tuple[int, int] = (0, 1)):
        if len(split) < batch_size:
            raise DataError(f"batch size {batch_size} is larger than the {len(split)} images of the split")
        index, parts = part
        if batch_size % parts or not 0 <= index < parts:
            raise DataError(f"part {index} of {parts} does not cut batches of {batch_size} evenly")
        self.split = split
        self.batch_size = batch_size
        self.part_size = batch_size // parts
        self.part_offset = index * self.part_size
        self.seed = seed
        self.augmentation = augmentation or PadCrop()
        self.steps_per_epoch = len(split) // batch_size  # drop the last partial batch, as the paper's iterations do
        self.window = min(len(split), window or window_images(split))
        self.chunk = max(1, self.window // WINDOW_CHUNKS)
        self.stream = stream
        self.device = device or split.labels.device
        self.labels = split.labels.to(self.device)
        self._staging: _Staging | None = None  # streaming: the host buffers and the reader, made on first use

    def order(self, generator: torch.Generator) -> tuple[torch.Tensor, list[tuple[list[int], int, int]]]:
        """The epoch's order of the split's images, and its windows as (chunks, first position, end position)."""
        n = len(self.split)
        if self.window >= n:
            return torch.randperm(n, generator=generator), [(list(range(math.ceil(n / self.chunk))), 0, n)]
        chunk_order = torch.randperm(math.ceil(n / self.chunk), generator=generator)
        parts, windows, position = [], [], 0
        for group in chunk_order.split(WINDOW_CHUNKS):
            chunks = group.tolist()
            members = torch.cat([torch.arange(c * self.chunk, min(n, (c + 1) * self.chunk)) for c in chunks])
            parts.append(members[torch.randperm(len(members), generator=generator)])
            windows.append((chunks, position, position + len(members)))
            position += len(members)
        return torch.cat(parts), windows

    def batches(self, epoch: int, start: int = 0):
        generator = epoch_generator(self.seed, epoch)
        order, windows = self.order(generator)
        # Drawn for the whole epoch up front (a few small host-to-device copies per epoch, none per batch).
        drawn = tuple(t.to(self.device) for t in self.augmentation.draw(len(self.split), generator))
        if self.stream:
            yield from self._streamed(epoch, order, windows, drawn, start)
            return
        order = order.to(self.device)
        # an augmentation that reads the split in place (the fused CPU crops) gets it whole, with the indices
        in_place = hasattr(self.augmentation, "apply_to") and self.split.images.is_contiguous()
        for step in range(start, self.steps_per_epoch):
            chosen = self._positions(step)
            batch = order[chosen]
            drawn_now = tuple(t[chosen] for t in drawn)
            if in_place:
                yield self.augmentation.apply_to(self.split.images, batch, *drawn_now), self.labels[batch]
            else:
                yield self.augmentation.apply(self.split.images[batch], *drawn_now), self.labels[batch]

    def _positions(self, step: int) -> slice:
        """The positions in the epoch's order of this loader's images at `step` (its part of the batch)."""
        first = step * self.batch_size + self.part_offset
        return slice(first, first + self.part_size)

    # ---- streaming ---------------------------------------------------------------------------------------

    def _read_window(self, chunks: list[int], buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chunks' images read into the front of `buffer` (a staging buffer: pinned for CUDA), and each
        chunk's offset there (-1: absent)."""
        n = len(self.split)
        offsets = torch.full((math.ceil(n / self.chunk),), -1, dtype=torch.long)
        at = 0
        for c in chunks:
            begin, end = c * self.chunk, min(n, (c + 1) * self.chunk)
            buffer[at: at + end - begin].copy_(self.split.images[begin:end])  # one large sequential read
            offsets[c] = at
            at += end - begin
        return buffer[:at], offsets

    def _streamed(self, epoch: int, order: torch.Tensor, windows, drawn, start: int):
        on_device = order.to(self.device)  # one copy per epoch; `order` stays on the host to plan the reads
        if self._staging is None:
            self._staging = _Staging(self, self.window)  # the most images a window holds
        staging = self._staging
        loaded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def window_of(position: int) -> int:
            return next(w for w, (_, begin, end) in enumerate(windows) if begin <= position < end)

        last = len(windows) - 1
        for step in range(start, self.steps_per_epoch):
            positions = self._positions(step)
            lo, hi = positions.start, positions.stop
            needed = range(window_of(lo), window_of(hi - 1) + 1)
            for w in list(loaded):
                if w < needed[0]:
                    del loaded[w]  # done with: its device memory goes back
            for w in needed:
                if w not in loaded:
                    loaded[w] = staging.take((epoch, w), windows[w][0])
            if needed[-1] < last:
                staging.prefetch((epoch, needed[-1] + 1), windows[needed[-1] + 1][0])
            elif not staging.pending:  # the last window: read the next epoch's first meanwhile (its order is
                _, next_windows = self.order(epoch_generator(self.seed, epoch + 1))  # known already)
                staging.prefetch((epoch + 1, 0), next_windows[0][0])
            parts = []
            for w in needed:
                images, offsets = loaded[w]
                begin, end = max(lo, windows[w][1]), min(hi, windows[w][2])
                index = on_device[begin:end]
                parts.append(images[offsets[index // self.chunk] + index % self.chunk])
            images = parts[0] if len(parts) == 1 else torch.cat(parts)
            labels = self.labels[on_device[lo:hi]]
            yield self.augmentation.apply(images, *(t[lo:hi] for t in drawn)), labels


class _Staging:
    """A streamed split's way to the device: two host buffers used in turn (pinned for CUDA, allocated once:
    pinning is slow, and a new pinned buffer per window cost as much as its read), one reader thread that
    fills them a window ahead of training (across an epoch's end too), and the copy to the device on a side
    stream, so that it overlaps the compute stream's work; the compute stream waits on an event for it. A
    buffer is refilled only once the copy out of it has finished (its event). On the CPU the "copy" is a
    clone, so that the buffer can be refilled while its window trains."""

    def __init__(self, loader: EpochLoader, capacity: int):
        self.loader, self.device = loader, loader.device
        cuda = self.device.type == "cuda"
        shape = (capacity, *loader.split.images.shape[1:])
        self.buffers = [torch.empty(shape, dtype=torch.uint8, pin_memory=cuda) for _ in range(2)]
        self.copied: list = [None, None]  # per buffer: the event of the last copy out of it (CUDA)
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-stream")
        self.pending: dict[tuple[int, int], tuple[int, object]] = {}  # (epoch, window) -> (buffer, future)
        self.turn = 0  # the buffer the next read fills

    def prefetch(self, key: tuple[int, int], chunks: list[int]) -> None:
        """Start reading window `key` into the next buffer (one read ahead at most: the other buffer holds the
        window being copied or trained)."""
        if self.pending:  # this window, or another, is being read already
            return
        slot, self.turn = self.turn, 1 - self.turn
        event = self.copied[slot]

        def read():
            if event is not None:
                event.synchronize()  # the copy out of this buffer is done: it may be overwritten
            return self.loader._read_window(chunks, self.buffers[slot])

        self.pending[key] = (slot, self.reader.submit(read))

    def take(self, key: tuple[int, int], chunks: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Window `key` on the device: its read (started ahead, or now) and its copy."""
        if key not in self.pending:
            for _, future in self.pending.values():  # a read of another window (a resume elsewhere): let it end
                future.result()
            self.pending.clear()
            self.prefetch(key, chunks)
        slot, future = self.pending.pop(key)
        host, offsets = future.result()
        if self.stream is None:
            return host.clone(), offsets
        with torch.cuda.stream(self.stream):
            images = host.to(self.device, non_blocking=True)
            offsets = offsets.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.stream)
        current = torch.cuda.current_stream(self.device)
        current.wait_event(event)  # the batches read the window only after it has arrived
        images.record_stream(current)  # made on the side stream, used on this one: not freed before it is done
        offsets.record_stream(current)
        self.copied[slot] = event
        return images, offsets

    def __del__(self):
        reader = getattr(self, "reader", None)
        if reader is not None:
            reader.shutdown(wait=False, cancel_futures=True)


def eval_batches(split: Split, batch_size: int, device: torch.device, limit: int = 0, transform=None,
                 first: int = 0, pad: bool = False):
    """Images `first` up to `limit` of `split` (0: all) in order, at `batch_size`, on `device`, transformed for
    evaluation. A split left on the host is copied a batch at a time. With `pad`, a last short batch is filled
    up to `batch_size` with black images, so that a compiled net sees one shape (a CUDA graph is recorded per
    shape, and inside the timed evaluation): the labels are the real images' only, and the logits past them
    are to be dropped (in evaluation mode an image's logits do not depend on the others of its batch)."""
    count = min(limit or len(split), len(split))
    for start in range(first, count, batch_size):
        end = min(start + batch_size, count)
        images = split.images[start:end]
        if pad and end - start < batch_size:
            images = torch.cat([images, images.new_zeros((batch_size - (end - start),) + images.shape[1:])])
        images = images.to(device, non_blocking=True)
        yield (transform(images) if transform is not None else images), split.labels[start:end].to(device)
