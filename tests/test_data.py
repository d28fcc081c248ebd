"""The CIFAR reader (standard pickle layout, strict validation) and the device-resident augmentation."""

import pickle

import numpy as np
import pytest
import torch

from bench import data
from bench.data import DataError


def test_reads_the_standard_layout_exactly(tiny_cifar10):
    root, written = tiny_cifar10
    cifar = data.load("cifar10", root, download=False)
    assert (len(cifar.train), len(cifar.test), cifar.num_classes) == (200, 100, 10)
    assert cifar.train.images.dtype == torch.uint8 and cifar.train.images.shape == (200, 3, 32, 32)
    first, labels = written["data_batch_1"]
    assert torch.equal(cifar.train.images[0], torch.from_numpy(first[0].reshape(3, 32, 32)))
    last, _ = written["data_batch_5"]
    assert torch.equal(cifar.train.images[-1], torch.from_numpy(last[-1].reshape(3, 32, 32)))
    assert cifar.train.labels[:40].tolist() == labels
    assert cifar.test.labels.tolist() == written["test_batch"][1]


def test_reads_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("train", 30), ("test", 10)):
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
                         "fine_labels": list(range(99, 99 - size, -1)), "coarse_labels": [0] * size}, handle)
    cifar = data.load("cifar100", tmp_path, download=False)
    assert cifar.num_classes == 100 and len(cifar.train) == 30
    assert cifar.train.labels[0] == 99


def test_validation_split_is_held_out_and_fixed(tiny_cifar10):
    root, _ = tiny_cifar10
    one = data.load("cifar10", root, download=False, val_size=50)
    two = data.load("cifar10", root, download=False, val_size=50)
    assert (len(one.train), len(one.val)) == (150, 50)
    assert torch.equal(one.val.images, two.val.images)
    everything = data.load("cifar10", root, download=False).train.images
    together = torch.cat([one.train.images, one.val.images]).flatten(1)
    assert sorted(map(bytes, together.numpy())) == sorted(map(bytes, everything.flatten(1).numpy()))


def test_truncated_file_is_named(tiny_cifar10):
    root, _ = tiny_cifar10
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"data_batch_3: cannot be read as a CIFAR batch file"):
        data.load("cifar10", root, download=False)


def test_garbage_file_is_named(tiny_cifar10):
    root, _ = tiny_cifar10
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"test_batch: cannot be read"):
        data.load("cifar10", root, download=False)


@pytest.mark.parametrize(
    "content, message",
    [
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}, "'data' must be a uint8 array of shape"),
        ({b"data": np.zeros((4, 1024), np.uint8), b"labels": [0] * 4}, "'data' must be a uint8 array of shape"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "3 labels for 4 images"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, "labels must lie in 0..9; found 0..10"),
        ({b"data": np.zeros((4, 3072), np.uint8)}, "missing entries ['labels']"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0.5] * 4}, "labels must be integers; found float64"),
    ],
)
def test_wrong_content_is_named(tiny_cifar10, content, message):
    root, _ = tiny_cifar10
    with open(root / "cifar-10-batches-py" / "data_batch_2", "wb") as handle:
        pickle.dump(content, handle)
    with pytest.raises(DataError) as error:
        data.load("cifar10", root, download=False)
    assert "data_batch_2" in str(error.value) and message in str(error.value)


def test_short_training_batch_is_named(tiny_cifar10):
    root, written = tiny_cifar10
    data_, labels = written["data_batch_5"]
    with open(root / "cifar-10-batches-py" / "data_batch_5", "wb") as handle:
        pickle.dump({b"data": data_[:30], b"labels": labels[:30]}, handle)
    with pytest.raises(DataError, match="data_batch_5: 30 images, but batches.meta says each training batch has 40"):
        data.load("cifar10", root, download=False)


def test_missing_file_is_named(tiny_cifar10):
    root, _ = tiny_cifar10
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4: file missing"):
        data.load("cifar10", root, download=False)


def test_missing_folder_tries_download_then_says_how_to_provide_data(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as error:
        data.load("cifar10", tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "download failed: Name or service not known" in message and "--data-dir" in message


def constant_images(n):
    """Image i is filled with the value i+1 (never 0, so padding is recognisable); its label is i."""
    images = (torch.arange(n, dtype=torch.uint8) + 1)[:, None, None, None].expand(n, 3, 32, 32).contiguous()
    return data.Split(images, torch.arange(n))


def test_augment_crops_within_the_padding_and_flips():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    offsets = torch.tensor([[4, 4], [0, 0], [8, 8], [0, 8], [4, 4], [2, 5]])
    flips = torch.tensor([False, False, False, False, True, True])
    out = data.augment(images, offsets, flips)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    assert torch.equal(out[0], images[0])  # centred crop, no flip: the original
    assert torch.equal(out[1], padded[1, :, 0:32, 0:32]) and out[1, :, :4, :].eq(0).all()
    assert torch.equal(out[2], padded[2, :, 8:40, 8:40])
    assert torch.equal(out[3], padded[3, :, 0:32, 8:40])
    assert torch.equal(out[4], images[4].flip(-1))
    assert torch.equal(out[5], padded[5, :, 2:34, 5:37].flip(-1))


def test_drawn_offsets_cover_the_range_and_flips_are_balanced():
    offsets, flips = data.draw_augmentation(20_000, torch.Generator().manual_seed(0))
    assert offsets.min() == 0 and offsets.max() == 8
    assert set(offsets.unique().tolist()) == set(range(9))
    assert 0.45 < flips.float().mean() < 0.55


def test_epoch_batches_keep_labels_with_images_and_cover_the_split_once():
    split = constant_images(100)
    loader = data.EpochLoader(split, batch_size=16, seed=3)
    seen = []
    for images, labels in loader.batches(epoch=0):
        for image, label in zip(images, labels):
            values = image.unique().tolist()
            assert set(values) <= {0, label.item() + 1}  # only padding and the image's own value
            assert (image != 0).sum() >= 3 * 28 * 28  # a crop never loses more than 4 rows and 4 columns
        seen += labels.tolist()
    assert loader.steps_per_epoch == 6 and len(seen) == 96 and len(set(seen)) == 96


def test_epoch_order_is_seeded_and_resumable():
    split = data.Split(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), torch.arange(64))
    loader = data.EpochLoader(split, batch_size=8, seed=1)
    full = list(loader.batches(epoch=2))
    again = list(loader.batches(epoch=2))
    tail = list(loader.batches(epoch=2, start=5))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(full, again))
    assert len(tail) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(full[5:], tail))
    assert not torch.equal(full[0][1], next(loader.batches(epoch=3))[1])
    other_seed = data.EpochLoader(split, batch_size=8, seed=2)
    assert not torch.equal(full[0][1], next(other_seed.batches(epoch=2))[1])


def test_normalizer_modes(monkeypatch):
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    pixel = data.Normalizer(images, "pixel")(images)
    assert pixel.mean(dim=0).abs().max() < 1e-5  # per-pixel mean subtraction (§4.2)
    channel = data.Normalizer(images, "channel")(images)
    assert channel.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert torch.allclose(channel.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    # the chunked float64 statistics equal those of the whole split as one float tensor
    pixels = images.float() / 255
    monkeypatch.setattr(data, "STATISTICS_CHUNK", 7)
    chunked = data.Normalizer(images, "channel")
    torch.testing.assert_close(chunked.mean, pixels.mean(dim=(0, 2, 3), keepdim=True), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(chunked.std, pixels.std(dim=(0, 2, 3), keepdim=True), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(data.Normalizer(images, "pixel").mean, pixels.mean(dim=0, keepdim=True),
                               rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="normalize=zca is not allowed"):
        data.Normalizer(images, "zca")
