"""ImageNet-style class folders (`ROOT/{train,val}/<class>/*.JPEG`): ImageNet (§3.4), fast.ai's Imagenette and
Imagewoof, or any folder in that layout, decoded once into a uint8 cache and trained on the device.

Reading follows torchvision's ImageFolder: classes are the sorted folder names under train/, labels their
indices; files count as images by extension. A class folder without images is an error (it would shift
every label after it), as is a val/ class that train/ lacks; other files are ignored and counted. A file
that does not decode is an error naming it, or, with `skip_corrupt`, left out and listed in the records.

The cache: every image is decoded once (in parallel processes, with a progress bar), resized to a shorter
side of `stored_size` and centre-cropped square (torchvision's Resize + CenterCrop), and written as one
uint8 array (N, 3, S, S) with a JSON description beside it. Its name carries a hash of the file list (paths
and sizes) and the stored size, so a changed folder builds a new cache and an unchanged one reuses it. Both
files are written under temporary names and renamed into place, the description last: a crash leaves no
cache that looks complete. Rows are in a fixed random order of the files (seed 0), so any contiguous run of
rows (a streaming chunk, the first images of an evaluation subset, a held-out validation split) is a
random sample of the classes. The array is memory-mapped: a cache larger than memory still opens at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .augmentation import CenterResize, ResizedCrop
from ..errors import OutOfSpace, free_bytes, no_space
from .core import Data, DataError, Split, check_val_size

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_VERSION = 1
CACHE_FOLDER = ".resnet-bench-cache"
STORED_SHARE = 1.25  # the cache keeps images 1.25x the training crop (160 px for 128), room for the crops
FILES_PER_TASK = 64


def stored_size(image_size: int) -> int:
    return round(image_size * STORED_SHARE)


@dataclass
class Listing:
    """The images of one split folder: (path relative to the split folder, label, bytes) in sorted order."""

    folder: Path
    classes: list[str]
    files: list[tuple[str, int, int]]
    ignored: list[str] = field(default_factory=list)  # files that are not images by their extension


def scan(folder: Path, classes: list[str] | None = None) -> Listing:
    """List a split folder. With `classes` (the training split's), its class folders must be among them."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    training = classes is None
    if training:
        classes = found
        if not classes:
            raise DataError(f"{folder}: no class folders; expected {folder}/<class>/<image files>")
    else:
        unknown = [name for name in found if name not in classes]
        if unknown:
            raise DataError(f"{folder}: class folders {unknown[:3]} are not among the {len(classes)} classes of "
                            f"the training split")
    files, ignored = [], []
    label_of = {name: index for index, name in enumerate(classes)}
    for name in found:
        count = 0
        for root, _, names in sorted(os.walk(folder / name)):
            for file_name in sorted(names):
                path = Path(root) / file_name
                relative = str(path.relative_to(folder))
                if file_name.lower().endswith(IMAGE_EXTENSIONS):
                    files.append((relative, label_of[name], path.stat().st_size))
                    count += 1
                else:
                    ignored.append(relative)
        if not count and training:
            raise DataError(f"{folder / name}: class folder without images (extensions: "
                            f"{', '.join(IMAGE_EXTENSIONS)}); remove it or add images, since every class folder "
                            f"is a label")
    return Listing(folder, classes, files, ignored)


def decode(path: Path | str, size: int) -> np.ndarray:
    """One image as uint8 (3, size, size): shorter side resized to `size` (bilinear, antialiased), centre crop.

    The same arithmetic as torchvision's Resize(size) + CenterCrop(size) on a PIL image; JPEGs are first
    decoded at the smallest DCT scale that is still at least `size` (PIL's draft mode), which is what makes
    ImageNet's full-size JPEGs affordable to decode."""
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        image = image.convert("RGB")
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)
        new = (size, new_long) if width <= height else (new_long, size)
        if image.size != new:
            image = image.resize(new, Image.BILINEAR)
        left, top = int(round((new[0] - size) / 2.0)), int(round((new[1] - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


def _decode_task(cache_path: str, count: int, size: int, folder: str, rows: list[tuple[int, str]]):
    """In a worker process: decode `rows` (row, relative path) straight into the cache file."""
    array = np.memmap(cache_path, dtype=np.uint8, mode="r+", shape=(count, 3, size, size))
    failures = []
    for row, relative in rows:
        try:
            array[row] = decode(os.path.join(folder, relative), size)
        except Exception as error:  # PIL raises many kinds for a bad file; each is the file's fault
            failures.append((row, relative, f"{type(error).__name__}: {error}"))
    array.flush()
    del array
    return len(rows), failures


@dataclass
class Cache:
    split: Split
    path: Path
    reused: bool
    skipped: list[dict]  # {"file", "error"} of images left out with skip_corrupt
    files: list[str]  # in row order


def cache_key(listing: Listing, size: int) -> str:
    text = json.dumps([CACHE_VERSION, size, listing.classes, listing.files])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(listing: Listing, split_name: str, size: int, cache_dir: Path, skip_corrupt: bool = False,
           workers: int | None = None, say=print) -> Cache:
    """The split as a memory-mapped uint8 cache: reused when one of this file list and size exists, else built."""
    key = cache_key(listing, size)
    stem = f"{split_name}-{size}px-{key}"
    data_path, meta_path = cache_dir / f"{stem}.u8", cache_dir / f"{stem}.json"
    reused = meta_path.is_file() and data_path.is_file()
    if not reused:
        _build(listing, split_name, size, cache_dir, data_path, meta_path, skip_corrupt, workers, say)
    with open(meta_path) as handle:
        meta = json.load(handle)
    if meta["skipped"] and not skip_corrupt:
        listed = ", ".join(item["file"] for item in meta["skipped"][:3])
        raise DataError(f"{listing.folder}: {len(meta['skipped'])} images do not decode ({listed}); the cache "
                        f"{data_path} leaves them out. Repair or remove them, or pass --skip-corrupt to train "
                        f"without them")
    count = len(meta["labels"])
    if data_path.stat().st_size != count * 3 * size * size:
        raise DataError(f"{data_path}: {data_path.stat().st_size} bytes, expected {count * 3 * size * size} for "
                        f"{count} images of {size}px; delete it to rebuild")
    images = torch.from_numpy(np.memmap(data_path, dtype=np.uint8, mode="c", shape=(count, 3, size, size)))
    labels = torch.tensor(meta["labels"], dtype=torch.long)
    return Cache(Split(images, labels), data_path, reused, meta["skipped"], meta["files"])


def _build(listing: Listing, split_name: str, size: int, cache_dir: Path, data_path: Path, meta_path: Path,
           skip_corrupt: bool, workers: int | None, say) -> None:
    from tqdm import tqdm

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the cache folder {cache_dir} ({error.strerror}); pass --cache-dir DIR") from None
    count = len(listing.files)
    if not count:
        raise DataError(f"{listing.folder}: no images")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(0)).tolist()  # row r holds file order[r]
    need = count * 3 * size * size
    free = free_bytes(cache_dir)
    if free is not None and free < need:  # a memory-mapped write past a full disk would kill the decoders
        raise OutOfSpace(cache_dir, need, f"the {split_name} cache", free, elsewhere="--cache-dir", resumes=False)
    if not workers:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    say(f"decoding {count:,} {split_name} images of {listing.folder} at {size}px into {data_path} "
        f"({need / 2**30:.2f} GiB, {workers} processes)")
    partial = data_path.with_name(f".{data_path.name}.{os.getpid()}.partial")
    started = time.perf_counter()
    failures: list[tuple[int, str, str]] = []
    try:
        np.memmap(partial, dtype=np.uint8, mode="w+", shape=(count, 3, size, size)).flush()
        rows = [(row, listing.files[index][0]) for row, index in enumerate(order)]
        tasks = [rows[at: at + FILES_PER_TASK] for at in range(0, count, FILES_PER_TASK)]
        with ProcessPoolExecutor(max_workers=workers, initializer=_decoder_signals) as pool, \
                tqdm(total=count, unit="img", desc=f"cache {split_name}", dynamic_ncols=True, disable=None) as bar:
            futures = [pool.submit(_decode_task, str(partial), count, size, str(listing.folder), task) for task in tasks]
            try:
                for future in as_completed(futures):
                    done, failed = future.result()
                    failures += failed
                    bar.update(done)
                    if failed and not skip_corrupt:
                        row, relative, error = failed[0]
                        raise DataError(f"{listing.folder / relative}: cannot be decoded as an image ({error}); "
                                        f"repair or remove it, or pass --skip-corrupt to train without it")
            except BaseException:  # a bad image, Ctrl-C, SIGTERM: the tasks not started are dropped, not waited for
                for other in futures:
                    other.cancel()
                raise
        failures.sort()
        failed_rows = {failure[0] for failure in failures}
        kept = [row for row in range(count) if row not in failed_rows]
        if failures:
            _compact(partial, count, size, kept)
        labels = [listing.files[order[row]][1] for row in kept]
        files = [listing.files[order[row]][0] for row in kept]
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, data_path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if no_space(error):
            raise OutOfSpace(cache_dir, need, f"the {split_name} cache", elsewhere="--cache-dir") from error
        raise
    meta = {"version": CACHE_VERSION, "stored_size": size, "folder": str(listing.folder.resolve()),
            "classes": listing.classes, "labels": labels, "files": files,
            "skipped": [{"file": relative, "error": error} for _, relative, error in failures],
            "ignored": listing.ignored, "seconds": round(time.perf_counter() - started, 1)}
    temporary = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(json.dumps(meta))
        os.replace(temporary, meta_path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if no_space(error):
            raise OutOfSpace(cache_dir, None, f"the {split_name} cache's description", elsewhere="--cache-dir",
                             resumes=False) from error
        raise
    for stale in cache_dir.glob(f"{split_name}-{size}px-*"):  # the same split and size from an older file list
        if stale.stem != data_path.stem:
            stale.unlink(missing_ok=True)
    say(f"cached {len(kept):,} {split_name} images in {meta['seconds']:.0f} s"
        + (f"; skipped {len(failures)} that do not decode" if failures else ""))


def _decoder_signals() -> None:
    """In each decoding process: Ctrl-C is the parent's to handle (it drops the tasks left and stops the pool);
    SIGTERM and SIGHUP end the process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def _compact(path: Path, count: int, size: int, kept: list[int]) -> None:
    """Close the gaps the skipped rows leave, in place, and cut the file to the kept rows."""
    array = np.memmap(path, dtype=np.uint8, mode="r+", shape=(count, 3, size, size))
    for target, row in enumerate(kept):
        if target != row:
            array[target] = array[row]
    array.flush()
    del array
    with open(path, "rb+") as handle:
        handle.truncate(len(kept) * 3 * size * size)


# ---- locating a dataset's folder ----------------------------------------------------------------------------

def find_root(name: str, data_dir: Path, releases: tuple[str, ...], size: int, url: str | None,
              download: bool, layout_help: str) -> Path:
    """DATA_DIR itself when it holds train/ and val/, else the first release folder in it that does
    (releases in order of preference for this stored size); downloaded from `url` when none is there."""
    if (data_dir / "train").is_dir():
        return data_dir
    for release in releases:
        if (data_dir / release / "train").is_dir():
            return data_dir / release
    where = ", ".join(str(data_dir / release) for release in releases)
    if url is None:
        raise DataError(f"{name} not found: neither {data_dir} nor {where} holds a train/ folder. {layout_help}")
    if not download:
        raise DataError(f"{name} not found in {data_dir} (looked for {where}; downloading is off). "
                        f"Download {url} and extract it there, or pass --data-dir DIR")
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(url, download_root=str(data_dir))
    except Exception as error:  # no network, refused, disk full: all end the same way for the user
        raise DataError(f"{name} not found in {data_dir} (looked for {where}) and the download of {url} failed "
                        f"({error}). Download and extract it by hand, or pass --data-dir DIR") from None
    return find_root(name, data_dir, releases, size, None, False, layout_help)


def load(name: str, root: Path, num_classes: int | None, image_size: int, val_size: int = 0,
         normalize: str = "channel", crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), skip_corrupt: bool = False,
         cache_dir: str | os.PathLike | None = None, say=None) -> Data:
    """The dataset at ROOT (train/ and val/ class folders) as `Data`, through the cache."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    if normalize != "channel":
        raise DataError(f"normalize={normalize} does not apply to {name}: its images are cropped at random places "
                        f"and sizes, so there is no fixed pixel grid for a per-pixel mean; use normalize=channel")
    size = stored_size(image_size)
    train_listing = scan(root / "train")
    if num_classes is not None and len(train_listing.classes) != num_classes:
        raise DataError(f"{root / 'train'}: {len(train_listing.classes)} class folders, but {name} has {num_classes}")
    val_listing = scan(root / "val", train_listing.classes)
    folder = Path(cache_dir) if cache_dir else _default_cache_dir(root)
    train = cached(train_listing, "train", size, folder, skip_corrupt, say=say)
    test = cached(val_listing, "val", size, folder, skip_corrupt, say=say)
    train_split, val = train.split, None
    if val_size:
        check_val_size(val_size, len(train_split))
        # The cache's rows are in random order: its first images are a random sample (and stay memory-mapped).
        images, labels = train_split.images, train_split.labels
        train_split, val = Split(images[val_size:], labels[val_size:]), Split(images[:val_size], labels[:val_size])
    ignored = train_listing.ignored + [f"val/{f}" for f in val_listing.ignored]
    details = {
        "folder": str(root.resolve()), "stored_size": size,
        "cache": {"train": str(train.path.resolve()), "val": str(test.path.resolve())},
        "skipped_files": [dict(item, split=split) for split, cache in (("train", train), ("val", test))
                          for item in cache.skipped],
        "ignored_files": len(ignored),
    }
    if ignored:
        say(f"ignored {len(ignored)} files that are not images by their extension ({', '.join(ignored[:3])}"
            f"{', ...' if len(ignored) > 3 else ''})")
    augmentation = ResizedCrop(size, image_size, crop_scale, crop_ratio)
    return Data(name, len(train_listing.classes), train_split, test.split, val, image_size=image_size,
                augmentation=augmentation, eval_transform=CenterResize(image_size), normalize=normalize,
                classes=train_listing.classes, details=details, reader=READER)


IMAGENET_LAYOUT = (
    "Lay ILSVRC2012 out as DIR/train/<wnid>/*.JPEG and DIR/val/<wnid>/*.JPEG (the validation images sorted into "
    "class folders, e.g. with the valprep.sh script of PyTorch's ImageNet example) and pass --data-dir DIR; "
    "ImageNet is never downloaded (its licence requires an account at image-net.org)"
)


class FolderReader:
    """Class folders of image files (data.core.Reader): ImageNet, Imagenette, Imagewoof and folder:PATH."""

    one_size = False  # the recipe picks the resolution; the cache stores 1.25x it
    standard_words = "torchvision ImageFolder over the JPEG files (decoded every epoch)"

    def load(self, declared, data_dir: Path, *, download: bool, val_size: int, image_size: int, normalize,
             crop_scale, crop_ratio, skip_corrupt: bool, cache_dir, say) -> Data:
        if declared.path is not None:
            root = Path(declared.path)
            if not (root / "train").is_dir():
                raise DataError(f"{root}: no train/ folder; a folder dataset needs PATH/train/<class>/<images> and "
                                f"PATH/val/<class>/<images>")
        else:
            releases = releases_for(declared.releases, image_size)
            url = declared.url.format(release=releases[0]) if declared.url else None
            root = find_root(declared.name, data_dir, releases, stored_size(image_size), url, download,
                             IMAGENET_LAYOUT)
        return load(declared.name, root, declared.num_classes, image_size, val_size, normalize or "channel",
                    crop_scale, crop_ratio, skip_corrupt, cache_dir, say)

    def standard_dataset(self, data: Data, train: bool, transform):
        from torchvision import datasets as folders

        return folders.ImageFolder(str(Path(data.details["folder"]) / ("train" if train else "val")), transform)


def releases_for(releases: tuple[str, ...], image_size: int) -> tuple[str, ...]:
    """Release folders, those with enough pixels for this training size first (the 160 px release for 128 px
    crops; the 320 px one for 224)."""
    small = [r for r in releases if r.endswith("-160")]
    if stored_size(image_size) <= 160:
        return tuple(small + [r for r in releases if r not in small])
    return tuple([r for r in releases if r not in small] + small)


READER = FolderReader()


def _default_cache_dir(root: Path) -> Path:
    """Beside the data when its folder is writable; otherwise (a shared, read-only ImageNet) the user's cache."""
    if os.access(root, os.W_OK):
        return root / CACHE_FOLDER
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "resnet-bench" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
