"""CIFAR-10/100 as the paper uses them (§4.2): 32x32 images, the paper's pad-and-crop augmentation.

Reading: the standard python-pickle layout (`cifar-10-batches-py/`, `cifar-100-python/`) is read and
validated here rather than by torchvision, whose md5 check rejects re-packed copies. A corrupt or truncated
file is an error naming the file, never a silently smaller dataset. A pickle can run any code it names, and a
dataset copied from a mirror or a shared disk is not to be trusted: the batches are read by an unpickler that
builds only what the format holds (dicts, lists, strings, bytes, numpy arrays and their dtypes) and refuses
anything else before it runs (`BatchUnpickler`). The splits (150 MB for CIFAR-10) are
then held whole on the training device (loader.py), augmented there by `PadCrop` (augmentation.py), and
evaluated on the single original 32x32 view. `READER` is this module as the dataset registry sees it.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import OutOfSpace, no_space
from .augmentation import PadCrop
from .core import Data, DataError, Split, check_val_size

IMAGE_SHAPE = (3, 32, 32)


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle that names something a CIFAR batch never holds (a function, a class other than numpy's arrays)."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class BatchUnpickler(pickle.Unpickler):
    """The unpickler of CIFAR batch files: containers, strings and bytes are built by pickle itself; the only
    globals a batch names are numpy's array reconstruction and dtype (under numpy 1's `numpy.core` and numpy 2's
    `numpy._core` module names; `_frombuffer` at protocol 5) and `_codecs.encode` (how Python 3 pickles bytes at
    protocol 2). Anything else is refused before it is called."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5's arrays
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise RefusedGlobal(module, name)
        return super().find_class(module, name)


def read_pickle(path: Path):
    """The object a CIFAR pickle holds; a DataError naming the file, and what it asked for, when it asks to build
    anything a batch does not hold (nothing of it has run then)."""
    try:
        with open(path, "rb") as handle:
            # latin1 reads both the original Python 2 pickles and Python 3 re-packs.
            return BatchUnpickler(handle, encoding="latin1").load()
    except RefusedGlobal as refused:
        raise DataError(f"{path}: refused: it asks to load {refused.module}.{refused.name}, which a CIFAR batch never "
                        f"holds (only dicts, lists, strings, bytes and numpy arrays); nothing of it was run. Replace "
                        f"the file with the dataset's own") from None


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


def load(dataset: str, data_dir: str | os.PathLike, download: bool = True, val_size: int = 0,
         image_size: int = 0, normalize: str = "pixel") -> Data:
    """Read a CIFAR dataset from DATA_DIR/<standard folder>, downloading it with torchvision if missing.

    With val_size > 0, that many training images (a fixed random choice, the same for every seed and run)
    are held out as a validation split, as in the paper's 45k/5k split.
    """
    if image_size not in (0, IMAGE_SHAPE[-1]):
        raise DataError(f"{dataset} images are {IMAGE_SHAPE[-1]}x{IMAGE_SHAPE[-1]}; a recipe's image_size "
                        f"{image_size} cannot apply")
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
        check_val_size(val_size, len(train))
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        train, val = train.subset(order[val_size:].sort().values), train.subset(order[:val_size].sort().values)
    return Data(dataset, layout.num_classes, train, test, val, augmentation=PadCrop(), normalize=normalize,
                reader=READER)


class CifarReader:
    """The python-pickle batches of CIFAR-10/100 (data.core.Reader)."""

    one_size = True  # 32x32, as stored
    standard_words = "PIL images from the uint8 arrays (as torchvision's CIFAR10 dataset hands them out)"

    def load(self, declared, data_dir: Path, *, download: bool, val_size: int, image_size: int, normalize,
             crop_scale, crop_ratio, skip_corrupt: bool, cache_dir, say) -> Data:
        return load(declared.name, data_dir, download, val_size, image_size, normalize or "pixel")

    def standard_dataset(self, data: Data, train: bool, transform):
        return PilImages(data.train if train else data.test, transform)


class PilImages:
    """A split as torchvision's CIFAR10 holds it (uint8 HWC in one array), handed out as PIL images: the
    standard recipe's dataset (a torch Dataset)."""

    def __init__(self, split: Split, transform):
        self.images = np.ascontiguousarray(split.images.permute(0, 2, 3, 1).numpy())
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


READER = CifarReader()


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
    except Exception as error:  # no network, refused: all end the same way for the user
        if no_space(error):
            raise OutOfSpace(root, None, f"the {dataset} download", elsewhere="--data-dir", resumes=False) from None
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
        meta = read_pickle(path)
        return int(meta.get("num_cases_per_batch", meta.get(b"num_cases_per_batch")))
    except DataError:
        raise
    except Exception:
        raise DataError(f"{path}: cannot be read as CIFAR metadata") from None


def _read_batch(path: Path, layout: DatasetLayout) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file missing from the {layout.folder} folder")
    try:
        batch = read_pickle(path)
    except DataError:
        raise
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
