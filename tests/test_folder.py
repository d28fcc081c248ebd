"""ImageNet-style class folders: the reader, the decoded cache, device augmentation, evaluation transform,
seeded and resumable order (held whole or streamed), and training runs, on tiny folders written here."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from bench import data, train
from bench import suite as suites
from bench.data import augmentation as augment, folder
from bench.data.loader import EpochLoader
from bench.errors import UserError
from bench.records import RunRecord
from bench.runs import Request

TINY_NET = "imagenet(blocks=1-1-1-1)"


def write_folder(root, train_counts=None, val_counts=None, seed=0, extension=".JPEG"):
    """Class folders of small random images, unsorted on purpose (b before a); sizes vary, none square."""
    rng = np.random.default_rng(seed)
    train_counts = train_counts or {"n02b": 14, "n01a": 12, "n03c": 13}
    val_counts = val_counts or {"n02b": 4, "n01a": 3, "n03c": 5}
    for split, counts in (("train", train_counts), ("val", val_counts)):
        for name, count in counts.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for index in range(count):
                height, width = rng.integers(36, 60), rng.integers(40, 70)
                pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{name}_{index:03d}{extension}", quality=90)
    return root


@pytest.fixture
def tiny_folder(tmp_path):
    return write_folder(tmp_path / "tiny")


def load(root, **options):
    options.setdefault("say", lambda message: None)
    return data.load(f"folder:{root}", image_size=options.pop("image_size", 32), **options)


# ---- the reader ------------------------------------------------------------------------------------------

def test_reader_orders_classes_counts_images_and_decodes_like_torchvision(tiny_folder):
    (tiny_folder / "train" / "n01a" / "README.txt").write_text("not an image")
    loaded = load(tiny_folder, cache_dir=tiny_folder / "cache")
    assert loaded.classes == ["n01a", "n02b", "n03c"] and loaded.num_classes == 3
    assert (len(loaded.train), len(loaded.test)) == (39, 12)
    assert sorted(loaded.train.labels.tolist()) == [0] * 12 + [1] * 14 + [2] * 13
    assert sorted(loaded.test.labels.tolist()) == [0] * 3 + [1] * 4 + [2] * 5
    assert loaded.train.images.dtype == torch.uint8 and loaded.train.images.shape == (39, 3, 40, 40)  # 32 x 1.25
    assert loaded.details["ignored_files"] == 1 and loaded.details["skipped_files"] == []

    # each row is its file through Resize(40) + CenterCrop(40), and has its class's label
    from torchvision import transforms as T

    meta = json.loads(next((tiny_folder / "cache").glob("train-40px-*.json")).read_text())
    assert len(meta["files"]) == 39 and meta["files"] != sorted(meta["files"])  # rows in a fixed random order
    reference = T.Compose([T.Resize(40), T.CenterCrop(40), T.PILToTensor()])
    for row in (0, 17, 38):
        relative = meta["files"][row]
        with Image.open(tiny_folder / "train" / relative) as image:
            expected = reference(image.convert("RGB"))
        assert loaded.classes[loaded.train.labels[row]] == relative.split("/")[0]
        # JPEGs at most 2x the size are decoded at full scale: the same pixels as torchvision's
        assert torch.equal(loaded.train.images[row], expected), relative


def test_png_decodes_exactly_as_torchvision(tmp_path):
    from torchvision import transforms as T

    pixels = np.random.default_rng(1).integers(0, 256, size=(300, 220, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    with Image.open(tmp_path / "a.png") as image:
        expected = T.Compose([T.Resize(80), T.CenterCrop(80), T.PILToTensor()])(image)
    assert torch.equal(torch.from_numpy(folder.decode(tmp_path / "a.png", 80)), expected)


def test_corrupt_image_is_named_or_skipped_and_recorded(tiny_folder):
    bad = tiny_folder / "train" / "n02b" / "n02b_broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    with pytest.raises(data.DataError, match=f"{bad}: cannot be decoded as an image") as error:
        load(tiny_folder, cache_dir=tiny_folder / "cache")
    assert "--skip-corrupt" in str(error.value)
    assert not list((tiny_folder / "cache").glob("*.u8"))  # nothing half-written left behind

    loaded = load(tiny_folder, cache_dir=tiny_folder / "cache", skip_corrupt=True)
    assert len(loaded.train) == 39  # the 39 good images, the broken one left out
    [skipped] = loaded.details["skipped_files"]
    assert skipped["file"] == "n02b/n02b_broken.JPEG" and skipped["split"] == "train"
    # without the flag, the cache that lacks it is refused rather than silently used
    with pytest.raises(data.DataError, match="1 images do not decode"):
        load(tiny_folder, cache_dir=tiny_folder / "cache")


def test_empty_class_folder_is_an_error_naming_it(tiny_folder):
    (tiny_folder / "train" / "n04empty").mkdir()
    (tiny_folder / "train" / "n04empty" / "notes.txt").write_text("no images here")
    with pytest.raises(data.DataError, match="n04empty: class folder without images"):
        load(tiny_folder, cache_dir=tiny_folder / "cache")


def test_val_class_unknown_to_train_is_an_error(tiny_folder):
    write_folder(tiny_folder, train_counts={}, val_counts={"n09zzz": 1}, seed=3)
    with pytest.raises(data.DataError, match=r"class folders \['n09zzz'\] are not among the 3 classes"):
        load(tiny_folder, cache_dir=tiny_folder / "cache")


def test_missing_folders_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(data.DataError, match="never downloaded") as error:
        data.load("imagenet", tmp_path)
    assert "DIR/val/<wnid>/*.JPEG" in str(error.value)

    import torchvision.datasets.utils as utils

    def offline(url, download_root):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(utils, "download_and_extract_archive", offline)
    with pytest.raises(data.DataError) as error:
        data.load("imagenette", tmp_path)
    message = str(error.value)
    assert "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz" in message
    assert "Name or service not known" in message and "--data-dir" in message
    with pytest.raises(UserError, match="unknown dataset 'imagenet22k'; choose one of: cifar10, cifar100, "
                                        "imagenette, imagewoof, imagenet, folder:PATH"):
        data.load("imagenet22k", tmp_path)


def test_a_release_folder_inside_data_dir_is_found(tmp_path):
    write_folder(tmp_path / "imagenette2-320", train_counts={f"n{i}": 2 for i in range(10)},
                 val_counts={f"n{i}": 1 for i in range(10)})
    loaded = data.load("imagenette", tmp_path, image_size=32, say=lambda message: None)
    assert loaded.details["folder"] == str((tmp_path / "imagenette2-320").resolve()) and loaded.num_classes == 10


# ---- the cache ------------------------------------------------------------------------------------------

def test_cache_is_reused_when_the_files_are_unchanged_and_rebuilt_when_they_change(tiny_folder):
    said = []
    cache = tiny_folder / "cache"
    first = load(tiny_folder, cache_dir=cache, say=said.append)
    assert sum("decoding" in line for line in said) == 2  # train and val
    [train_file] = cache.glob("train-40px-*.u8")
    written = train_file.stat().st_mtime_ns

    said.clear()
    again = load(tiny_folder, cache_dir=cache, say=said.append)
    assert not any("decoding" in line for line in said)
    assert train_file.stat().st_mtime_ns == written and torch.equal(again.train.images, first.train.images)

    Image.new("RGB", (50, 45), (200, 10, 10)).save(tiny_folder / "train" / "n03c" / "n03c_new.JPEG")
    said.clear()
    changed = load(tiny_folder, cache_dir=cache, say=said.append)
    assert [line for line in said if "decoding" in line][0].startswith("decoding 40 train images")
    assert len(changed.train) == 40 and not train_file.exists()  # the stale cache is gone
    assert len(list(cache.glob("train-40px-*.u8"))) == 1

    other_size = load(tiny_folder, cache_dir=cache, image_size=48)  # another stored size: its own cache
    assert other_size.train.images.shape[-1] == 60 and len(list(cache.glob("train-*px-*.u8"))) == 2


def test_validation_split_is_a_random_sample_of_the_cache(tiny_folder):
    loaded = load(tiny_folder, cache_dir=tiny_folder / "cache", val_size=9)
    everything = load(tiny_folder, cache_dir=tiny_folder / "cache")
    assert (len(loaded.train), len(loaded.val)) == (30, 9)
    assert torch.equal(torch.cat([loaded.val.images, loaded.train.images]), everything.train.images)


# ---- augmentation and evaluation on the device -----------------------------------------------------------

@pytest.mark.slow
def test_resized_crops_are_exact_for_given_boxes():
    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [10.0, 4.0, 26.0, 20.0], [4.0, 8.0, 36.0, 40.0]])
    flips = torch.tensor([False, True, False])
    out = augment.resized_crops(images, boxes, 16, flips)
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.float32
    assert torch.equal(out[0], images[0, :, 0:16, 0:16].float())  # a box of the output's size: its pixels
    assert torch.equal(out[1], images[1, :, 4:20, 10:26].float().flip(-1))  # mirrored
    # a box twice the output's size: each output pixel the mean of its 2x2 block
    torch.testing.assert_close(out[2], F.avg_pool2d(images[2:3, :, 8:40, 4:36].float(), 2)[0])


@pytest.fixture
def fused_kernel():
    """The fused C++ crop kernel, built on first use (about 30 s once per machine); skips where it cannot be."""
    kernel = augment._fused_kernel()
    if kernel is None:
        pytest.skip("no C++ compiler here: the fused kernel cannot be built")
    return kernel


@pytest.mark.slow
def test_fused_cpu_crops_equal_the_crops_then_the_normaliser(fused_kernel):
    images = torch.randint(0, 256, (12, 3, 40, 40), dtype=torch.uint8)
    crop = augment.ResizedCrop(stored_size=40, size=32, scale=(0.1, 1.0), ratio=(3 / 4, 4 / 3))
    boxes, flips = crop.draw(12, torch.Generator().manual_seed(1))
    # beside random boxes: the whole image, a box past no edge but touching two, a box on pixel edges
    boxes[:3] = torch.tensor([[0.0, 0.0, 40.0, 40.0], [30.5, 29.0, 40.0, 40.0], [8.0, 4.0, 40.0, 36.0]])
    index = torch.tensor([5, 0, 11, 3, 3, 7, 1, 2, 9, 10, 4, 6])
    normalizer = data.Normalizer(images, "channel")
    for layout in (torch.channels_last, torch.contiguous_format):
        fused = crop.normalizing(normalizer, layout, torch.device("cpu"))
        assert fused is not None and fused.describe() == crop.describe()
        expected = normalizer(crop.apply(images[index], boxes, flips), layout)
        out = fused.apply_to(images, index, boxes, flips)
        assert out.is_contiguous(memory_format=layout) and out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)
        assert torch.equal(fused.apply(images[index], boxes, flips), out)  # gathered first: the same values
    # the network's input comes from the loader, and the training path does not normalise it again
    loader = EpochLoader(data.Split(images, torch.zeros(12, dtype=torch.long)), 4, 0, fused)
    batch, _ = next(loader.batches(0))
    assert batch.dtype == torch.float32 and -3 < batch.mean() < 3
    assert crop.normalizing(normalizer, torch.channels_last, torch.device("meta")) is None  # CUDA: not fused


def test_without_a_compiler_the_crops_are_normalised_apart(monkeypatch, capsys):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: g++ not found")

    monkeypatch.setattr(augment, "_FUSED", [])
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    crop = augment.ResizedCrop(stored_size=40, size=32, scale=(0.1, 1.0), ratio=(3 / 4, 4 / 3))
    assert crop.normalizing(data.Normalizer(images, "channel"), torch.channels_last, torch.device("cpu")) is None
    assert capsys.readouterr().err.endswith("warning: the fused crop kernel could not be built (RuntimeError: Error "
                                            "building extension: g++ not found); cropping and normalising in "
                                            "separate passes, slower\n")
    assert augment._fused_kernel() is None and capsys.readouterr().err == ""  # said once


def _failing_compile(monkeypatch, error):
    """torch.compile of the crop sampler gives a function that raises `error` on its call, as a compiler does."""
    monkeypatch.setattr(augment, "_SAMPLER", [])
    monkeypatch.setattr(augment, "_SAMPLER_FALLBACK", [])

    def compiled(*args):
        raise error

    monkeypatch.setattr(torch, "compile", lambda function, **options: compiled)


def test_the_crop_sampler_falls_back_to_eager_only_when_compiling_fails(monkeypatch, capsys):
    from torch._dynamo.exc import BackendCompilerFailed

    images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [4.0, 2.0, 30.0, 36.0]] * 2)
    failure = BackendCompilerFailed(lambda: None, RuntimeError("Compiler: cc not found\nmore"), None)
    _failing_compile(monkeypatch, failure)
    out = augment.resized_crops(images, boxes, 32)
    assert torch.equal(out, augment._bilinear_crops(images, boxes, torch.zeros(4, dtype=torch.bool), 32))
    assert capsys.readouterr().err.endswith(
        "warning: torch.compile of the crop sampler failed (RuntimeError: Compiler: cc not found); sampling eagerly "
        "for the rest of this process, about 10x slower (config.json records it)\n")
    assert augment.sampler_fallback() == "RuntimeError: Compiler: cc not found"
    augment.resized_crops(images, boxes, 32)
    assert capsys.readouterr().err == ""  # said once: the sampler is eager now

    # running out of memory, or any error of the batch's own, is not the compiler's: it propagates, and the
    # sampler stays compiled for the next batch
    for error in (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                  BackendCompilerFailed(lambda: None, torch.OutOfMemoryError("out of memory in autotuning"), None),
                  ValueError("boxes must be (n, 4)")):
        _failing_compile(monkeypatch, error)
        with pytest.raises(type(error)):
            augment.resized_crops(images, boxes, 32)
        assert augment.sampler_fallback() is None and augment._SAMPLER[0] is not augment._bilinear_crops


@pytest.mark.slow
def test_a_run_whose_crop_sampler_fell_back_says_so_in_config_json(tiny_folder, tmp_path, monkeypatch):
    from torch._dynamo.exc import BackendCompilerFailed

    _failing_compile(monkeypatch, BackendCompilerFailed(lambda: None, RuntimeError("no working C++ compiler"), None))
    monkeypatch.setattr(augment.ResizedCrop, "fuses", lambda self, device, normalize: False)  # as on CUDA
    outcome = smoke(tmp_path / "r", tiny_folder, cache_dir=tmp_path / "cache")
    assert outcome.status == "finished"
    config = json.loads(outcome.record.config_path.read_text())
    assert config["dataset"]["crop_sampler"] == "eager: torch.compile failed (RuntimeError: no working C++ compiler)"


def test_drawn_boxes_respect_the_scale_and_ratio_ranges():
    crop = augment.ResizedCrop(stored_size=160, size=128, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3))
    boxes, flips = crop.draw(5000, torch.Generator().manual_seed(0))
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert boxes.min() >= 0 and boxes.max() <= 160 + 1e-3
    share = width * height / 160**2
    assert share.min() >= 0.35 - 1e-4 and share.max() <= 1 + 1e-4
    ratio = width / height
    assert ratio.min() >= 3 / 4 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4
    assert 0.45 < flips.float().mean() < 0.55
    again, _ = crop.draw(5000, torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_evaluation_is_resize_and_centre_crop_as_torchvision():
    from torchvision.transforms.v2 import functional as TF

    images = torch.randint(0, 256, (2, 3, 160, 160), dtype=torch.uint8)
    out = augment.CenterResize(128)(images)
    expected = TF.center_crop(TF.resize(images.float(), [146], antialias=True), [128])
    assert out.shape == (2, 3, 128, 128) and augment.CenterResize(128).resize == 146
    assert torch.equal(out, expected)
    assert augment.CenterResize(224).resize == 256


# ---- order: seeded, resumable, the same whether held or streamed ----------------------------------------

def numbered(n, size=8):
    """Image i filled with i % 256 in channel 0 and i // 256 in channel 1: a batch says which images it holds."""
    images = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    images[:, 0] = (torch.arange(n) % 256).view(-1, 1, 1).to(torch.uint8)
    images[:, 1] = (torch.arange(n) // 256).view(-1, 1, 1).to(torch.uint8)
    return data.Split(images, torch.arange(n))


class Identity:
    def draw(self, n, generator):
        return (torch.rand(n, generator=generator),)

    def apply(self, images, noise):
        return images


@pytest.mark.parametrize("window", [None, 64])
def test_order_is_seeded_resumable_and_the_same_streamed(window):
    split = numbered(300)
    held = EpochLoader(split, 32, seed=5, augmentation=Identity(), window=window)
    streamed = EpochLoader(split, 32, seed=5, augmentation=Identity(), window=window, stream=True,
                           device=torch.device("cpu"))
    batches = list(held.batches(epoch=1))
    assert len(batches) == 9 == held.steps_per_epoch
    for (images, labels), (s_images, s_labels) in zip(batches, streamed.batches(epoch=1), strict=True):
        assert torch.equal(images, s_images) and torch.equal(labels, s_labels)
        ids = images[:, 0, 0, 0].long() + 256 * images[:, 1, 0, 0].long()
        assert torch.equal(ids, labels)  # images and labels stay together
    seen = torch.cat([labels for _, labels in batches])
    assert len(seen.unique()) == 288  # a permutation: no image twice in an epoch
    tail = list(streamed.batches(epoch=1, start=6))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches[6:], tail, strict=True))
    assert not torch.equal(batches[0][1], next(held.batches(epoch=2))[1])
    if window:  # windows of 64 images: 8 chunks of 8 consecutive cache rows, shuffled together
        order, windows = held.order(data.epoch_generator(5, 1))
        assert len(windows) == 5 and windows[-1][2] == 300
        for chunks, begin, end in windows:
            assert len(chunks) <= 8 and set((order[begin:end] // 8).tolist()) == set(chunks)


def test_streaming_reuses_two_staging_buffers_and_reads_the_next_epochs_first_window_ahead(monkeypatch):
    """300 images in windows of 64: 5 windows an epoch, each read on the reader thread into one of two host
    buffers allocated once (pinned on CUDA), one window ahead of training, and the next epoch's first window
    while the last one of this epoch trains. The batches are the resident loader's."""
    split = numbered(300)
    held = EpochLoader(split, 32, seed=5, augmentation=Identity(), window=64)
    streamed = EpochLoader(split, 32, seed=5, augmentation=Identity(), window=64, stream=True,
                           device=torch.device("cpu"))
    reads = []
    real_read = EpochLoader._read_window

    def read_window(self, chunks, buffer):
        reads.append((tuple(chunks), buffer.data_ptr()))
        return real_read(self, chunks, buffer)

    monkeypatch.setattr(EpochLoader, "_read_window", read_window)
    for epoch in (0, 1):
        for (images, labels), (s_images, s_labels) in zip(held.batches(epoch), streamed.batches(epoch), strict=True):
            assert torch.equal(images, s_images) and torch.equal(labels, s_labels)
        streamed._staging.reader.submit(lambda: None).result()  # the reads submitted so far have run
        assert len(reads) == 5 * epoch + 6  # this epoch's 5 windows and, ahead, the next one's first
    assert len({buffer for _, buffer in reads}) == 2  # two buffers, in turn
    assert [buffer for _, buffer in reads] == [reads[0][1], reads[1][1]] * 5 + [reads[0][1]]
    _, windows = held.order(data.epoch_generator(5, 1))
    assert reads[5][0] == tuple(windows[0][0])  # read during epoch 0: epoch 1's first window


# ---- training runs on a tiny folder ---------------------------------------------------------------------

def smoke(results, root, cache_dir=None, placement="auto"):
    return train.run(Request(TINY_NET, f"folder:{root}", "smoke"), data.Source(cache_dir=cache_dir), results,
                     train.Execution(torch.device("cpu"), placement=placement), wandb_mode="disabled", quiet=True)


def curve(record):
    return [{k: v for k, v in row.items() if not k.startswith("throughput/")} for row in record.metrics()]


@pytest.mark.slow
def test_smoke_run_on_a_folder_and_its_killed_twin_resume_to_the_same_records(tiny_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    whole = smoke(tmp_path / "whole", tiny_folder, cache_dir=cache)
    assert whole.status == "finished"
    assert whole.run_id.startswith("imagenet-blocks-1-1-1-1-block-basic_folder-tiny_smoke-x1_seed0_")
    config = json.loads(whole.record.config_path.read_text())
    assert config["dataset"]["image_size"] == 64 and config["dataset"]["stored_size"] == 80
    assert config["dataset"]["num_classes"] == 3 and config["recipe"]["normalize"] == "channel"
    assert config["dataset"]["augmentation"].startswith("random-resized crop of 0.35-1")
    assert config["dataset"]["evaluation"] == "resize to 73, centre crop 64x64"
    assert whole.summary["macs"] > 0 and len(whole.record.metrics()) == 8

    real_append = RunRecord.append_metrics

    def killed_at_25(self, row):
        if row["iteration"] == 25:
            raise KeyboardInterrupt
        real_append(self, row)

    monkeypatch.setattr(RunRecord, "append_metrics", killed_at_25)
    with pytest.raises(KeyboardInterrupt):
        smoke(tmp_path / "killed", tiny_folder, cache_dir=cache)
    monkeypatch.undo()
    record = RunRecord(tmp_path / "killed", whole.run_id)
    assert record.status() == "interrupted" and record.load_checkpoint()["iteration"] == 20
    resumed = smoke(tmp_path / "killed", tiny_folder, cache_dir=cache)
    assert resumed.status == "finished" and curve(resumed.record) == curve(whole.record)
    for key in ("test_error", "test_loss", "train_error", "train_loss", "iterations"):
        assert resumed.summary[key] == whole.summary[key], key

    streamed = smoke(tmp_path / "streamed", tiny_folder, cache_dir=cache, placement="stream")
    assert curve(streamed.record) == curve(whole.record)  # where the data lives changes no number


def test_epoch_recipes_bind_to_the_folder_size():
    plan = replace(train.recipes.get("bot", 0.25, "imagenette"))
    assert plan.epochs == 5 and plan.image_size == 128 and plan.lr_warmup_epochs == 0.25
    bound = plan.resolve(9469).recipe
    steps = 9469 // 256
    assert bound.iterations == 5 * steps and bound.lr_warmup_iterations == round(0.25 * steps)
    assert bound.log_every == 9 and bound.checkpoint_every == 9  # checkpoints in a 180-iteration run, not after it
    schedule = plan.resolve(9469).schedule
    assert schedule.lr_at(0, False) == pytest.approx(0.1 / bound.lr_warmup_iterations)
    assert schedule.lr_at(bound.lr_warmup_iterations, False) == pytest.approx(0.1)
    assert schedule.lr_at(bound.iterations - 1, False) < 0.001  # cosine to nearly zero
    paper = train.recipes.get("imagenet", 1.0, "imagenet").resolve(1_281_167).recipe
    assert paper.iterations == 120 * 5004 and paper.milestones == (30 * 5004, 60 * 5004, 90 * 5004)
    with pytest.raises(UserError, match="recipe paper does not apply to imagenette; choose one of: imagenet, "
                                        "bot, smoke"):
        Request("resnet18", "imagenette", "paper").resolve()


def test_imagenette_suite_expands_to_the_papers_imagenet_questions():
    suite = suites.load("imagenette")
    assert (suite.dataset, suite.recipe) == ("imagenette", "bot")
    planned = suites.expand(suite, seeds=1)
    specs = [run.spec for run in planned]
    assert len(specs) == len(set(specs)) == 19
    assert {"plain18", "plain34", "resnet18(shortcut=A)", "resnet34(shortcut=A)", "resnet101", "resnet34",
            "resnet34(shortcut=C)", "resnet50", "resnet50b", "resnet50c", "resnet50d", "resnet18c",
            "resnet34c", "resnet50(stem=deep)", "resnet18", "resnet50b(groups=2,base_width=40)",
            "resnet50b(groups=4,base_width=24)", "resnet50b(groups=8,base_width=14)", "resnext50_32x4d"} == set(specs)
    assert all("_imagenette_bot-x1_seed0_" in run.run_id for run in planned)
    shared = {run.spec: run.experiments for run in planned}
    assert shared["resnet34(shortcut=A)"] == ("depth", "shortcuts") and shared["resnet50"] == ("depth", "tweaks", "stems")
    smoke_ids = {run.run_id for run in suites.expand(suite, "smoke", 0.5, 2)}
    assert len(smoke_ids) == 38 and all("_imagenette_smoke-x0.5_" in run_id for run_id in smoke_ids)
    imagenet = suites.load("imagenet")
    assert imagenet.recipe == "imagenet" and imagenet.experiments.keys() == suite.experiments.keys()


def test_cifar_run_ids_do_not_move(tmp_path):
    # the new recipe fields are absent from CIFAR records and ids while at their defaults
    assert "image_size" not in train.recipes.RECIPES["paper"].to_dict()
    assert os.path.basename(Request("resnet20", "cifar10", "paper", 0.05).resolve().run_id).startswith(
        "resnet20_cifar10_paper-x0.05_seed0_")


@pytest.mark.slow
def test_perf_on_a_folder_compares_with_torchvision_imagefolder(tiny_folder, tmp_path):
    from bench.cli import main

    out = tmp_path / "perf"
    assert main(["perf", TINY_NET, "--dataset", f"folder:{tiny_folder}", "--device", "cpu", "--iters", "2",
                 "--warmup", "1", "--repeats", "1", "--batch-size", "8", "--workers", "1", "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out)]) == 0
    markdown = (out / "perf.md").read_text()
    assert "torchvision ImageFolder over the JPEG files" in markdown and "at 128x128" in markdown
    rows = [line.split("|")[1:-1] for line in markdown.splitlines() if line.startswith(f"| {TINY_NET} |")]
    assert [row[1].strip() for row in rows] == ["train img/s", "data pipeline img/s", "inference img/s",
                                                "peak memory MB"]
    assert all(float(row[4].strip().rstrip("x")) > 0 for row in rows)
    assert f"Ceiling for {TINY_NET}: B's model step alone trains at" in markdown
    assert "Cost of W&B" not in markdown and "step time against" not in markdown  # CIFAR-only by default
