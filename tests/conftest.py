import pickle

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def write_cifar10(root, train_per_batch=40, test_size=100, seed=0):
    """A tiny CIFAR-10 in the real on-disk layout (python pickles, bytes keys, uint8 rows of 3072)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name, size in [(f"data_batch_{i}", train_per_batch) for i in range(1, 6)] + [("test_batch", test_size)]:
        data = rng.integers(0, 256, size=(size, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=size).tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [f"{i}.png".encode() for i in range(size)]}, handle)
        written[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [str(i) for i in range(10)], "num_cases_per_batch": train_per_batch}, handle)
    return written


@pytest.fixture
def tiny_cifar10(tmp_path):
    root = tmp_path / "data"
    written = write_cifar10(root)
    return root, written
