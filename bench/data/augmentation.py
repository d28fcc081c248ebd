"""The papers' augmentations as batched tensor ops on the training device (after airbench: no per-image work
on the host, no worker processes).

Each augmentation has `draw(n, generator)`, the random choices for n images drawn on the host from the
epoch's seeded generator (so a resumed run redraws exactly the same), `apply(images, *drawn)` on a
batch of uint8 images on the device, `normalizing(normalizer, memory_format, device)`: itself with the
normalisation fused in where that is faster (its batches are then the network's input), else None, and
`torchvision_steps()`: the same augmentation as torchvision transforms of one PIL image, the way the standard
PyTorch recipe writes it (`bench perf`'s baseline, standard.py).

- `PadCrop`: CIFAR (§4.2), "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from
  the padded image or its horizontal flip": one gather for the whole batch.
- `ResizedCrop`: ImageNet (§3.4 scale augmentation; Bag of Tricks' random-resized crop), a box per image
  with a random share of the area and aspect ratio, resampled bilinearly to the training size and mirrored
  at random, all crops of a batch in one compiled kernel (`resized_crops`). On the CPU the crops and the
  normalisation run fused in one C++ pass (`NormalizingResizedCrop`, resized_crops.cpp), built on first use.
- `CenterResize`: ImageNet evaluation, resize to size/0.875 then the centre size x size crop (224 of 256).
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F

PAD = 4
EVAL_CROP_SHARE = 0.875  # the usual 224 of 256


def draw_augmentation(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (n, 2) in 0..2*PAD (top, left within the padded image) and flip flags (n,)."""
    offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return offsets, flips


def augment(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Zero-pad by PAD, crop the image's own size at `offsets`, mirror where `flips`: one gather for the batch."""
    n, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (PAD, PAD, PAD, PAD))
    rows = (offsets[:, 0, None] + torch.arange(height, device=device))[:, None, :, None]
    cols = offsets[:, 1, None] + torch.arange(width, device=device)
    cols = torch.where(flips[:, None], cols.flip(-1), cols)[:, None, None, :]
    index = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(channels, device=device)[None, :, None, None]
    return padded[index, channel, rows, cols]


class PadCrop:
    """The paper's CIFAR augmentation (§4.2): pad 4, crop at the image's own size, flip."""

    def describe(self) -> str:
        return f"pad {PAD}, random crop, horizontal flip"

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return draw_augmentation(n, generator)

    def apply(self, images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        return augment(images, offsets, flips)

    def fuses(self, device: torch.device, normalize: str) -> bool:
        return False  # one gather of 32x32 crops: nothing to gain, and CIFAR's records stay bit-identical

    def torchvision_steps(self, size: int) -> list:
        from torchvision import transforms as T

        return [T.RandomHorizontalFlip(), T.RandomCrop(size, padding=PAD)]

    def normalizing(self, normalizer, memory_format: torch.memory_format, device: torch.device) -> None:
        return None

    def eager_fallback(self) -> str | None:
        return None  # no compiled kernel


class ResizedCrop:
    """Random-resized crop of stored square images to `size`, then a random horizontal flip.

    As torchvision's RandomResizedCrop: up to ten tries at a box whose area is a uniform share in `scale` of
    the image's and whose log aspect ratio is uniform in log `ratio`; where none fits, the centre crop of the
    ratio nearest the image's. Boxes are continuous (the sampler reads between pixels), not rounded."""

    ATTEMPTS = 10

    def __init__(self, stored_size: int, size: int, scale: tuple[float, float], ratio: tuple[float, float]):
        self.stored_size, self.size, self.scale, self.ratio = stored_size, size, tuple(scale), tuple(ratio)

    def describe(self) -> str:
        return (f"random-resized crop of {self.scale[0]:g}-{self.scale[1]:g} of the area, aspect "
                f"{self.ratio[0]:.3g}-{self.ratio[1]:.3g}, to {self.size}x{self.size}, horizontal flip")

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (n, 4) as (x1, y1, x2, y2) in stored pixels, and flip flags (n,)."""
        side = float(self.stored_size)
        shares = torch.empty(n, self.ATTEMPTS, dtype=torch.float64).uniform_(*self.scale, generator=generator)
        log_ratio = torch.empty(n, self.ATTEMPTS, dtype=torch.float64).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator)
        aspect = log_ratio.exp()
        widths = (side * side * shares * aspect).sqrt()
        heights = (side * side * shares / aspect).sqrt()
        fits = (widths <= side) & (heights <= side)
        first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first try that fits
        width, height = widths.gather(1, first).squeeze(1), heights.gather(1, first).squeeze(1)
        # none fits: the whole square, narrowed to the nearest allowed ratio
        fallback_ratio = min(max(1.0, self.ratio[0]), self.ratio[1])
        fallback = (side * min(1.0, fallback_ratio), side / max(1.0, fallback_ratio))
        any_fit = fits.any(dim=1)
        width = torch.where(any_fit, width, torch.full_like(width, fallback[0]))
        height = torch.where(any_fit, height, torch.full_like(height, fallback[1]))
        left = torch.rand(n, generator=generator, dtype=torch.float64) * (side - width)
        top = torch.rand(n, generator=generator, dtype=torch.float64) * (side - height)
        flips = torch.rand(n, generator=generator) < 0.5
        boxes = torch.stack([left, top, left + width, top + height], dim=1).float()
        return boxes, flips

    def apply(self, images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        return resized_crops(images, boxes, self.size, flips)

    def eager_fallback(self) -> str | None:
        """Why its crops are sampled eagerly in this process (torch.compile failed), or None."""
        return sampler_fallback()

    def torchvision_steps(self, size: int) -> list:
        from torchvision import transforms as T

        return [T.RandomResizedCrop(size, scale=self.scale, ratio=self.ratio), T.RandomHorizontalFlip()]

    def fuses(self, device: torch.device, normalize: str) -> bool:
        """Whether `normalizing` fuses here: per-channel statistics on the CPU, with a C++ compiler at hand.
        On CUDA the compiled sampler is fast already."""
        return device.type == "cpu" and normalize == "channel" and _fused_kernel() is not None

    def normalizing(self, normalizer, memory_format: torch.memory_format, device: torch.device):
        """This augmentation with the normaliser fused in (its batches are the network's input) where it
        `fuses`; None otherwise: the crops are then normalised as any batch is."""
        if not self.fuses(device, normalizer.mode):
            return None
        return NormalizingResizedCrop(self, normalizer, memory_format)


class NormalizingResizedCrop:
    """`ResizedCrop` whose batches come normalised, in the network's memory layout, from one C++ pass over
    each image (resized_crops.cpp): the crop, the flip and the normalisation that `_bilinear_crops` and the
    Normalizer compute in several passes through memory. 19,272 against 5,019 img/s for 64 crops of 160 to
    128 px on 2 CPU cores. The same values up to float rounding (level x 1/(255 std) - mean/std, not
    (level / 255 - mean) / std): within 1e-4 of the unfused path."""

    def __init__(self, crop: ResizedCrop, normalizer, memory_format: torch.memory_format):
        self.crop = crop
        self.scale = (1.0 / (255.0 * normalizer.std)).flatten().float().cpu()
        self.shift = (-normalizer.mean / normalizer.std).flatten().float().cpu()
        self.channels_last = memory_format == torch.channels_last

    def describe(self) -> str:
        return self.crop.describe()

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.crop.draw(n, generator)

    def apply(self, images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        return self.apply_to(images.contiguous(), torch.arange(len(images)), boxes, flips)

    def apply_to(self, split_images: torch.Tensor, index: torch.Tensor, boxes: torch.Tensor,
                 flips: torch.Tensor) -> torch.Tensor:
        """`apply` on split_images[index], read in place (the gather is part of the one pass)."""
        return _fused_kernel().normalized_crops(split_images, index, boxes, flips, self.scale, self.shift,
                                                self.crop.size, self.channels_last)


_FUSED = []


def _fused_kernel():
    """resized_crops.cpp, compiled once per machine by torch's extension builder (about 25 s, cached under
    ~/.cache/torch_extensions); None, with one warning, where it cannot be built (no C++ compiler)."""
    if not _FUSED:
        import hashlib
        import logging
        from pathlib import Path

        # before the import: it warns "No CUDA runtime is found" on every CPU-only machine, noise here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        from torch.utils import cpp_extension

        source = Path(__file__).with_name("resized_crops.cpp")
        name = f"resnet_bench_crops_{hashlib.sha256(source.read_bytes()).hexdigest()[:10]}"  # changed: built anew
        try:  # torch's own folder for it (py311_cu130/NAME under ~/.cache/torch_extensions): built already?
            built = any(Path(cpp_extension._get_build_directory(name, verbose=False)).glob(f"{name}*.so"))
        except Exception:  # a private helper of torch's: at worst the message shows once too often
            built = False
        if not built:
            print("building the fused crop kernel (once per machine, about 30 s)", file=sys.stderr, flush=True)
        # at::parallel_for spreads the images over torch's threads only when built with OpenMP, as torch is on
        # Linux; Apple's clang has no -fopenmp (the kernel then runs on one thread)
        openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
        try:
            _FUSED.append(cpp_extension.load(name, [str(source)], extra_cflags=["-O3", *openmp],
                                             extra_ldflags=openmp, verbose=False))
        except Exception as error:  # no compiler, no headers: the unfused path computes the same
            from ..tracking import warn

            reason = (str(error).strip().splitlines() or [""])[-1][:200]
            warn(f"the fused crop kernel could not be built ({type(error).__name__}: {reason}); cropping and "
                 f"normalising in separate passes, slower")
            _FUSED.append(None)
    return _FUSED[0]


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, size: int, flips: torch.Tensor | None = None):
    """The box (x1, y1, x2, y2) of each image resampled bilinearly to size x size (float levels 0..255),
    mirrored where `flips`: pixel centres at +0.5, so a box on pixel edges of the output's size returns those
    pixels exactly, and one twice as large the means of 2x2 blocks.

    One fused kernel through torch.compile (separable weights and four gathers per output pixel; 7,166
    against 1,785 img/s for roi_align's adaptive sampling, 64 crops of 160 to 128 px on 2 CPU cores), eager
    where compiling is unavailable. Not antialiased: the cache stores 1.25x the crop size, so a crop shrinks
    by at most 1.25x, where bilinear sampling loses little."""
    if flips is None:
        flips = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    return _sampler()(images, boxes.float(), flips, size)


def _bilinear_crops(images: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor, size: int) -> torch.Tensor:
    n, channels, height, width = images.shape
    steps = (torch.arange(size, device=images.device, dtype=torch.float32) + 0.5) / size
    x = boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1]) - 0.5  # (n, size) sample columns
    y = boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2]) - 0.5
    x = torch.where(flips[:, None], x.flip(-1), x).clamp(0, width - 1)
    y = y.clamp(0, height - 1)
    x0, y0 = x.floor().long(), y.floor().long()
    x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
    wx, wy = (x - x0)[:, None, None, :], (y - y0)[:, None, :, None]
    index = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(channels, device=images.device)[None, :, None, None]
    rows0, rows1 = y0[:, None, :, None], y1[:, None, :, None]
    cols0, cols1 = x0[:, None, None, :], x1[:, None, None, :]
    top = images[index, channel, rows0, cols0].float() * (1 - wx) + images[index, channel, rows0, cols1].float() * wx
    bottom = images[index, channel, rows1, cols0].float() * (1 - wx) + images[index, channel, rows1, cols1].float() * wx
    return top * (1 - wy) + bottom * wy


_SAMPLER = []
_SAMPLER_FALLBACK: list[str] = []  # why this process samples crops eagerly, once it does


def _sampler():
    """`_bilinear_crops`, compiled once per process (eager: 88 ms a batch against 9 compiled, the gathers
    unfused); eager with a warning where torch.compile cannot run (no C++ compiler, an unsupported op: what
    Dynamo and Inductor raise). Any other error, running out of memory above all, is the batch's own and
    propagates: falling back for it would make the rest of the run about 10x slower and say nothing."""
    if not _SAMPLER:
        import logging

        from torch._dynamo.exc import TorchDynamoException  # BackendCompilerFailed, InductorError, Unsupported

        # inductor's C++ toolchain lookup warns "No CUDA runtime is found" on every CPU-only machine: noise here
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        compiled = torch.compile(_bilinear_crops, dynamic=False)

        def sample(images, boxes, flips, size):
            try:
                return compiled(images, boxes, flips, size)
            except TorchDynamoException as error:
                if _out_of_memory(error):  # compiling ran out of memory: not the compiler's fault
                    raise
                from ..tracking import warn

                inner = getattr(error, "inner_exception", None) or error  # BackendCompilerFailed wraps the cause
                lines = str(inner).strip().splitlines()
                reason = f"{type(inner).__name__}: {lines[0]}" if lines else type(inner).__name__
                warn(f"torch.compile of the crop sampler failed ({reason}); sampling eagerly for the rest of this "
                     f"process, about 10x slower (config.json records it)")
                _SAMPLER_FALLBACK.append(reason)
                _SAMPLER[0] = _bilinear_crops
                return _bilinear_crops(images, boxes, flips, size)

        _SAMPLER.append(sample)
    return _SAMPLER[0]


def sampler_fallback() -> str | None:
    """Why the crop sampler runs eagerly in this process (torch.compile's error), or None while compiled."""
    return _SAMPLER_FALLBACK[0] if _SAMPLER_FALLBACK else None


def _out_of_memory(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is a device running out of memory."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, torch.OutOfMemoryError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__ or getattr(error, "inner_exception", None)
    return False


class CenterResize:
    """Evaluation: resize the stored square to round(size / 0.875), take the centre size x size (as
    torchvision's Resize + CenterCrop on a tensor: bilinear with antialiasing). Float levels 0..255."""

    def __init__(self, size: int):
        self.size = size
        self.resize = round(size / EVAL_CROP_SHARE)

    def describe(self) -> str:
        return f"resize to {self.resize}, centre crop {self.size}x{self.size}"

    def torchvision_steps(self, size: int) -> list:
        from torchvision import transforms as T

        return [T.Resize(self.resize), T.CenterCrop(self.size)]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        resized = F.interpolate(images.float(), size=(self.resize, self.resize), mode="bilinear",
                                antialias=True, align_corners=False)
        top = int(round((self.resize - self.size) / 2.0))
        return resized[:, :, top: top + self.size, top: top + self.size]
