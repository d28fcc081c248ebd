"""The training runner on tiny data in the real layout: records, resume, skip, divergence, errors, W&B."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

import variants
from bench import records, train
from bench import recipe as recipes
from bench.cli import main
from bench.data import Source
from bench.errors import UserError
from bench.records import RunRecord
from bench.runs import Request

TINY_NET = "cifar(depth=8)"  # one basic block per stage: the fastest real member of the family


def smoke(results, data_root, spec=TINY_NET, execution=None, wandb_mode="disabled", force=False, **request):
    return train.run(Request(spec, "cifar10", "smoke", **request), Source(data_root, download=False), results,
                     execution or train.Execution(torch.device("cpu")), wandb_mode=wandb_mode, force=force, quiet=True)


def curve(record):
    """The recorded curves without the wall-clock figures, which differ between any two runs."""
    return [{k: v for k, v in row.items() if not k.startswith("throughput/")} for row in record.metrics()]


def test_smoke_run_writes_complete_records(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    outcome = smoke(tmp_path / "results", root, spec="resnet20")
    assert outcome.status == "finished" and not outcome.skipped
    assert outcome.record.dir == tmp_path / "results" / "runs" / outcome.run_id
    assert not outcome.record.checkpoint_path.exists()

    config = json.loads(outcome.record.config_path.read_text())
    assert config["spec"] == "resnet20" and config["seed"] == 0
    assert config["variant"] == {"family": "cifar", "depth": 20, "block": "basic", "layers": [3, 3, 3], "stem": "3x3",
                                 "stride_in": None, "shortcut": "A", "zero_init": False, "se": False, "tweak": "none",
                                 "plain": False, "unit": "original", "groups": 1, "base_width": 64, "widen": 1,
                                 "dropout": 0.0, "gate_bias": 0.0}
    assert config["recipe"] == json.loads(json.dumps(recipes.RECIPES["smoke"].to_dict()))
    assert config["dataset"]["train_size"] == 200 and config["dataset"]["test_size"] == 100
    assert config["execution"]["device"] == "cpu"
    assert config["execution"]["precision"] == train.Execution(torch.device("cpu")).resolved().precision
    assert set(config["versions"]) >= {"python", "torch", "torchvision", "timm", "wandb"}
    assert "git_commit" in config

    rows = outcome.record.metrics()
    assert [row["iteration"] for row in rows] == list(range(5, 41, 5))
    assert {"train/loss", "train/error", "lr", "throughput/train_img_s"} <= set(rows[0])
    assert [row["iteration"] for row in rows if "test/error" in row] == [10, 20, 30, 40]
    # Each row holds the lr of its last step: iterations 1-20 at 0.1, 21-30 at 0.01, then 0.001.
    assert [row["lr"] for row in rows] == [0.1] * 4 + [0.01] * 2 + [0.001] * 2

    summary = outcome.summary
    assert summary["status"] == "finished" and summary["iterations"] == 40
    assert summary["params"] == 269_722 and summary["macs"] > 40e6
    assert summary["test_error"] == rows[-1]["test/error"] and 0 <= summary["test_error"] <= 100
    for key in ("train_img_s", "inference_img_s", "peak_memory_mb", "wall_seconds", "train_seconds"):
        assert summary[key] > 0, key


def test_train_img_s_is_the_steady_speed_and_the_first_segments_extra_is_compile_seconds(tmp_path, tiny_cifar10,
                                                                                           monkeypatch):
    """The first log segment holds the compile (and on CUDA the graph capture): here a first step that takes
    1.5 s longer stands in for it. summary.json's train_img_s is the speed of the segments after it;
    compile_seconds is the first segment's time beyond that speed."""
    from bench.paths import TrainingPath

    root, _ = tiny_cifar10
    real_step, calls = TrainingPath.train_step, {"n": 0}

    def step(self, batches, lrs):
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(1.5)
        real_step(self, batches, lrs)

    monkeypatch.setattr(TrainingPath, "train_step", step)
    outcome = smoke(tmp_path, root)
    summary, rows = outcome.summary, outcome.record.metrics()
    steady = [row["throughput/train_img_s"] for row in rows[1:]]  # 7 segments of 5 steps after the first
    assert summary["train_img_s"] == pytest.approx(len(steady) / sum(1 / speed for speed in steady), rel=1e-6)
    assert rows[0]["throughput/train_img_s"] < min(steady)
    assert 1.4 < summary["compile_seconds"] < 1.5 + 0.5 * (summary["train_seconds"] - 1.5)
    overall = 40 * 64 / summary["train_seconds"]
    assert summary["train_img_s"] > overall  # the whole run's rate would hide the speed behind the stall


def test_a_compiled_evaluation_pads_its_last_batch_to_one_shape_and_counts_only_the_real_images(tiny_cifar10,
                                                                                                  monkeypatch):
    """100 test images at batch 128 on the CPU: one short batch. Compiled (here: told it is), the net sees one
    batch shape, 28 black images past the real ones, whose logits are dropped: the loss and error are those of
    the unpadded pass. An array evaluates the same way."""
    from bench.paths import ArrayPath, TrainingPath

    root, _ = tiny_cifar10
    plan = recipes.RECIPES["smoke"].resolve(200, None)
    data = Source(root, download=False).load("cifar10", plan.inputs)
    execution = train.Execution(torch.device("cpu"), precision="fp32", compile="off")

    def net(seed):
        torch.manual_seed(seed)
        return variants.create(variants.parse(TINY_NET), num_classes=10)

    alone = TrainingPath(net(0), data, plan, 0, execution)
    array = ArrayPath([net(0), net(1)], data, plan, (0, 1), execution)
    eager = alone.evaluate(data.test), array.seed_evaluation(data.test), alone.evaluate(data.test, limit=60)
    monkeypatch.setattr(train.Execution, "pads_evaluation", property(lambda self: True))
    shapes = []
    for path in (alone, array):
        evaluator = path.evaluator
        path.evaluator = lambda *args, evaluator=evaluator: shapes.append(args[-1].shape[0]) or evaluator(*args)
    padded = alone.evaluate(data.test), array.seed_evaluation(data.test), alone.evaluate(data.test, limit=60)
    assert shapes == [128, 128, 128]  # never 100 or 60
    for (loss, error), (expected_loss, expected_error) in zip([padded[0], *padded[1], padded[2]],
                                                               [eager[0], *eager[1], eager[2]]):
        assert loss == pytest.approx(expected_loss, rel=1e-5) and error == expected_error
    assert padded[1][0] == pytest.approx(padded[0], rel=1e-5)  # seed 0 of the array is the run alone


def test_placement_counts_the_runs_share_of_the_device_not_its_free_memory(monkeypatch):
    """Two runs that start together on an 80 GB GPU each see 70 GB free: from the free memory alone each would
    keep a 30 GB split resident, 60 GB together with their activations to come. Given half the GPU each
    (--jobs 2, or Ray's --gpus-per-run 0.5), a run counts on 40 GB, keeps at most 20 GB resident, streams."""
    from bench import launch
    from bench.data import loader

    gigabyte = 2**30
    monkeypatch.setattr(loader, "memory_of", lambda device: (70 * gigabyte, 80 * gigabyte))
    gpu = torch.device("cuda", 0)
    assert loader.budget(gpu) == 70 * gigabyte and loader.budget(gpu, 0.5) == 40 * gigabyte
    assert loader.fits(30 * gigabyte, gpu) and not loader.fits(30 * gigabyte, gpu, 0.5)
    assert loader.fits(20 * gigabyte, gpu, 0.5)
    monkeypatch.setattr(loader, "memory_of", lambda device: (10 * gigabyte, 80 * gigabyte))
    assert loader.budget(gpu, 0.5) == 10 * gigabyte  # less free than the share: what is free
    # each slot's share, as a suite's children are given it
    assert launch.shares_of(["cuda:0", "cuda:1", "cuda:0", "cuda:1"]) == [0.5] * 4
    assert launch.shares_of(["cuda:0", "cuda:1", "cuda:0"]) == [0.5, 1.0, 0.5]
    assert launch.LocalLauncher(2, "cpu").shares == [0.5, 0.5] and launch.LocalLauncher(1, "cpu").shares == [1.0]


def test_deterministic_execution_turns_cudnns_search_off():
    """--deterministic on a GPU: cudnn's deterministic kernels and no benchmark; by default the search (fixed
    shapes). The flags are set before a path builds its net; the CPU needs neither."""
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        train.Execution(torch.device("cuda", 0), deterministic=True).configure_kernels()
        assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (False, True)
        train.Execution(torch.device("cuda", 0)).configure_kernels()
        assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (True, False)
        described = train.Execution(torch.device("cpu"), deterministic=True, device_share=0.5).describe()
        assert described["deterministic"] and "device_share" not in described  # a share changes no number
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved


COMPILE_IN_A_NEW_PROCESS = """
import sys, torch
from pathlib import Path
from bench.execution import use_compile_cache
print(use_compile_cache(Path(sys.argv[1])))
if sys.argv[2:] == ["--folder-only"]:  # where the cache goes is all this process is asked
    sys.exit()
compiled = torch.compile(lambda x: (x * 2).sin() + 1)
compiled(torch.randn(16))
from torch._dynamo.utils import counters
print(counters["inductor"]["fxgraph_cache_hit"], counters["inductor"]["fxgraph_cache_miss"])
"""


@pytest.mark.slow
def test_a_second_process_reuses_the_compile_cache_under_the_results_folder(tmp_path):
    """What the first process compiled (Inductor's FX graph: code generation and the C++ build) the second
    finds in the folder the runner gives torch.compile, whatever its own temp directory: a cache hit."""
    import os

    folder = tmp_path / "results" / train.COMPILE_CACHE_FOLDER
    environment = {key: value for key, value in os.environ.items() if key != "TORCHINDUCTOR_CACHE_DIR"}
    printed = []
    for temp in ("a", "b"):  # each process its own temp directory, as two containers or Ray nodes have
        (tmp_path / temp).mkdir()
        done = subprocess.run([sys.executable, "-c", COMPILE_IN_A_NEW_PROCESS, str(folder)], capture_output=True,
                              text=True, env=environment | {"TMPDIR": str(tmp_path / temp)}, timeout=300)
        assert done.returncode == 0, done.stderr
        printed.append(done.stdout.split("\n"))
    assert printed[0][0] == printed[1][0] == str(folder.resolve())
    assert printed[0][1] == "0 1" and printed[1][1] == "1 0"  # a miss, then a hit
    assert any(folder.rglob("*")) and not any((tmp_path / "b").rglob("*.so"))
    done = subprocess.run([sys.executable, "-c", COMPILE_IN_A_NEW_PROCESS, str(folder), "--folder-only"],
                          capture_output=True, text=True, timeout=300,
                          env=environment | {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "mine")})
    assert done.stdout.split("\n")[0] == str(tmp_path / "mine")  # the user's choice stands


def count_training_forwards(monkeypatch) -> dict:
    """Count the training-mode forward passes of every model built from now on."""
    real_create = variants.create
    counter = {"n": 0}

    def create(spec, num_classes=1000):
        model = real_create(spec, num_classes=num_classes)
        model.register_forward_hook(lambda module, i, o: counter.__setitem__("n", counter["n"] + module.training))
        return model

    monkeypatch.setattr(variants, "create", create)
    return counter


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    whole = smoke(tmp_path / "whole", root)

    real_append = RunRecord.append_metrics

    def killed_at_25(self, row):
        if row["iteration"] == 25:  # between the checkpoints at 20 and 40
            raise KeyboardInterrupt
        real_append(self, row)

    monkeypatch.setattr(RunRecord, "append_metrics", killed_at_25)
    with pytest.raises(KeyboardInterrupt):
        smoke(tmp_path / "killed", root)
    monkeypatch.undo()
    record = RunRecord(tmp_path / "killed", whole.run_id)
    assert record.status() == "interrupted"
    assert record.load_checkpoint()["iteration"] == 20
    with open(record.metrics_path, "a") as handle:
        handle.write('{"iteration": 25, "train/lo')  # a line cut by the kill

    forwards = count_training_forwards(monkeypatch)
    resumed = smoke(tmp_path / "killed", root)
    assert forwards["n"] == 20  # iterations 21-40 only: it resumed, it did not start over
    assert resumed.status == "finished" and resumed.run_id == whole.run_id
    assert curve(resumed.record) == curve(whole.record)
    for key in ("test_error", "test_loss", "train_error", "train_loss", "iterations"):
        assert resumed.summary[key] == whole.summary[key], key


@pytest.mark.slow
def test_sigkilled_process_resumes_to_identical_metrics(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    argv = [sys.executable, "-m", "bench", "train", TINY_NET, "--recipe", "smoke", "--scale", "5", "--data-dir",
            str(root), "--results-dir", str(tmp_path / "killed"), "--wandb", "disabled", "--device", "cpu"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("killed/runs/*/checkpoint.pt")) and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    process.kill()  # SIGKILL: no handler runs, the summary still says "running"
    assert process.wait() == -signal.SIGKILL
    record = RunRecord(tmp_path / "killed", next(tmp_path.glob("killed/runs/*")).name)
    assert record.status() == "running" and record.load_checkpoint()["iteration"] == 100

    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    whole = smoke(tmp_path / "whole", root, scale=5)
    assert record.status() == "finished" and curve(record) == curve(whole.record)
    assert record.summary()["test_error"] == whole.summary["test_error"]


def test_second_process_on_the_same_run_is_refused(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    outcome_id = records.run_id(TINY_NET, "cifar10", recipes.RECIPES["smoke"].to_dict(), 0)
    with RunRecord(tmp_path, outcome_id).lock():
        with pytest.raises(UserError, match=f"run {outcome_id} is being trained by another process"):
            smoke(tmp_path, root)


@pytest.mark.slow
def test_unreadable_checkpoint_is_set_aside(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    outcome_id = records.run_id(TINY_NET, "cifar10", recipes.RECIPES["smoke"].to_dict(), 0)
    record = RunRecord(tmp_path, outcome_id)
    record.dir.mkdir(parents=True)
    record.checkpoint_path.write_bytes(b"PK\x03\x04 truncated")
    assert smoke(tmp_path, root).status == "finished"
    assert "cannot be loaded" in capsys.readouterr().err
    assert (record.dir / "checkpoint.unreadable.pt").exists()


@pytest.mark.slow
def test_finished_run_is_skipped_and_force_redoes_it(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    first = smoke(tmp_path, root)
    written = first.record.summary_path.stat().st_mtime_ns
    again = smoke(tmp_path, root, spec="resnet20(depth=8)")  # another spelling of the same net
    assert again.skipped and again.run_id == first.run_id and again.status == "finished"
    assert first.record.summary_path.stat().st_mtime_ns == written

    assert main(["train", "resnet20(depth=8)", "--recipe", "smoke", "--data-dir", str(root), "--results-dir",
                 str(tmp_path), "--wandb", "disabled", "--device", "cpu"]) == 0
    assert f"run {first.run_id} is already finished; nothing to do" in capsys.readouterr().out

    forced = smoke(tmp_path, root, force=True)
    assert not forced.skipped and forced.summary["test_error"] == first.summary["test_error"]  # seeded: same result


def test_run_id_follows_spec_dataset_recipe_scale_seed():
    smoke_dict = recipes.RECIPES["smoke"].to_dict()
    base = records.run_id("resnet20", "cifar10", smoke_dict, 0)
    assert base == records.run_id("resnet20", "cifar10", dict(smoke_dict), 0)
    assert base.startswith("resnet20_cifar10_smoke-x1_seed0_")
    others = {
        records.run_id("resnet32", "cifar10", smoke_dict, 0),
        records.run_id("resnet20", "cifar100", smoke_dict, 0),
        records.run_id("resnet20", "cifar10", recipes.RECIPES["smoke"].scaled(2).to_dict(), 0),
        records.run_id("resnet20", "cifar10", smoke_dict, 1),
    }
    assert len(others) == 4 and base not in others


def poison_after(monkeypatch, training_calls):
    """Make every model built from now on output NaN after `training_calls` training-mode forwards."""
    real_create = variants.create

    def create(spec, num_classes=1000):
        model = real_create(spec, num_classes=num_classes)
        calls = {"n": 0}

        def hook(module, inputs, output):
            if not module.training:
                return output
            calls["n"] += 1
            return output * float("nan") if calls["n"] > training_calls else output

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(variants, "create", create)


def test_nan_loss_ends_as_diverged_with_records_kept(tmp_path, tiny_cifar10, monkeypatch, capsys):
    root, _ = tiny_cifar10
    poison_after(monkeypatch, training_calls=12)
    argv = ["train", TINY_NET, "--recipe", "smoke", "--data-dir", str(root), "--results-dir", str(tmp_path),
            "--wandb", "disabled", "--device", "cpu"]
    assert main(argv) == 3
    record = next(RunRecord(tmp_path, path.name) for path in (tmp_path / "runs").iterdir())
    summary = record.summary()
    assert summary["status"] == "diverged" and summary["iterations"] == 15
    assert "training loss became nan by iteration 15" in summary["reason"]
    rows = record.metrics()
    assert [row["iteration"] for row in rows] == [5, 10, 15]
    assert rows[-1]["train/loss"] is None and rows[1]["test/error"] is not None
    assert json.loads(record.config_path.read_text())["spec"] == TINY_NET
    assert main(argv) == 3  # a diverged run is a result: not redone without --force, and still diverged
    assert "is already diverged" in capsys.readouterr().out


@pytest.mark.slow
def test_paper_warm_up_for_very_deep_nets(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    # The tiny net stands in for ResNet-110: lower the depth threshold rather than train 110 layers here.
    warm = replace(recipes.RECIPES["smoke"], warmup_min_depth=8, warmup_iterations=10)
    monkeypatch.setitem(recipes.RECIPES, "smoke", warm)
    outcome = smoke(tmp_path, root)
    assert [row["lr"] for row in outcome.record.metrics()][:4] == [0.01, 0.01, 0.1, 0.1]
    assert outcome.summary["warmup_end"] == 10


@pytest.mark.slow
def test_validation_split_reports_val_and_test_error(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    outcome = smoke(tmp_path, root, val_size=40)
    config = json.loads(outcome.record.config_path.read_text())
    assert config["dataset"]["train_size"] == 160 and config["dataset"]["val_size"] == 40
    assert outcome.summary["val_error"] is not None and outcome.summary["test_error"] is not None
    assert "val/error" in outcome.record.metrics()[-1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data-dir", "{tmp}/nowhere", "--no-download"], "cifar10 not found: no folder {tmp}/nowhere/cifar-10-batches-py"),
        (["--device", "tpu"], "--device tpu is not allowed; choose one of: auto, cpu, cuda, cuda:INDEX"),
        (["--scale", "0"], "scale 0.0 is not allowed: it must be a positive number"),
        (["--val-split", "500"], "--val-split 500 is not allowed: hold out 1 to 199 of the 200 training images, or 0 for no validation split"),
        (["--device-share", "0"], "--device-share 0 is not allowed: it must be above 0 and at most 1"),
    ],
)
def test_train_user_errors_are_one_line(tmp_path, tiny_cifar10, capsys, extra, message):
    root, _ = tiny_cifar10
    extra = [item.replace("{tmp}", str(tmp_path)) for item in extra]
    argv = ["train", TINY_NET, "--recipe", "smoke", "--data-dir", str(root), "--results-dir", str(tmp_path / "r"),
            "--wandb", "disabled"] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message.replace("{tmp}", str(tmp_path))) and err.count("\n") == 1


def test_corrupt_data_is_named_by_the_cli(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04garbage")
    assert main(["train", TINY_NET, "--recipe", "smoke", "--data-dir", str(root), "--results-dir", str(tmp_path),
                 "--wandb", "disabled", "--device", "cpu"]) == 2
    assert "data_batch_1: cannot be read as a CIFAR batch file" in capsys.readouterr().err


@pytest.mark.parametrize("amx, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_is_bf16_only_with_amx(monkeypatch, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert train.Execution(torch.device("cpu")).resolved().precision == expected
    assert train.Execution(torch.device("cpu"), precision="fp32").resolved().precision == "fp32"
    assert train.Execution(torch.device("cpu"), precision="bf16").resolved().precision == "bf16"


def test_auto_compile_is_cuda_graphs_on_cuda_and_off_on_cpu():
    # fp32 keeps resolved() from asking a CUDA runtime this machine may not have
    assert train.Execution(torch.device("cuda"), precision="fp32").resolved().compile == "reduce-overhead"
    assert train.Execution(torch.device("cpu")).resolved().compile == "off"
    assert train.Execution(torch.device("cpu"), compile="default").resolved().compile == "default"
    with pytest.raises(UserError, match="compile fast is not allowed; choose one of: auto, off, default"):
        train.Execution(torch.device("cpu"), compile="fast").resolved()


@pytest.mark.slow
def test_compiled_run_follows_the_eager_run(tmp_path, tiny_cifar10):
    """The compiled path that CUDA takes by default (training and evaluation graphs, checkpoints of the
    uncompiled module), run here with the CPU's inductor backend: same records, the same numbers up to the
    reassociation of float sums."""
    root, _ = tiny_cifar10
    cpu = torch.device("cpu")
    eager = smoke(tmp_path / "eager", root, execution=train.Execution(cpu, precision="fp32", compile="off"))
    compiled = smoke(tmp_path / "compiled", root, execution=train.Execution(cpu, precision="fp32", compile="default"))
    assert compiled.status == "finished"
    assert records.read_json(compiled.record.config_path)["execution"]["compile"] == "default"
    eager_curve, compiled_curve = curve(eager.record), curve(compiled.record)
    assert [row["iteration"] for row in compiled_curve] == [row["iteration"] for row in eager_curve]
    assert compiled_curve[0]["train/loss"] == pytest.approx(eager_curve[0]["train/loss"], rel=1e-3)
    assert compiled.summary["test_error"] == pytest.approx(eager.summary["test_error"], abs=5.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_requested_without_cuda(capsys):
    assert main(["train", TINY_NET, "--device", "cuda"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


@pytest.mark.slow
def test_wandb_offline_files_hold_the_logged_keys(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    outcome = smoke(tmp_path, root, wandb_mode="offline")
    import wandb

    # as at the end of a training process: the W&B service flushes its files when it shuts down (once, when
    # earlier runs of this process had kept it alive, the file read back held only its header)
    wandb.teardown()
    logs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1 and outcome.run_id in logs[0].name
    blob = logs[0].read_bytes()
    for key in (b"train/loss", b"train/error", b"test/error", b"lr", b"throughput/train_img_s",
                b"variant", b"shortcut:A", b"test_error", b"train_img_s"):
        assert key in blob, key


@pytest.mark.slow
def test_wandb_failure_does_not_stop_training(tmp_path, tiny_cifar10, monkeypatch, capsys):
    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("service unreachable")

    monkeypatch.setattr(wandb, "init", broken)
    root, _ = tiny_cifar10
    outcome = smoke(tmp_path, root, wandb_mode="online")
    assert outcome.status == "finished" and outcome.summary["test_error"] is not None
    assert "W&B could not start (RuntimeError: service unreachable); training goes on" in capsys.readouterr().err


def test_atomic_json_write_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    records.write_json(path, {"status": "running"})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(records.json, "dump", crash)
    with pytest.raises(OSError):
        records.write_json(path, {"status": "finished"})
    assert json.loads(path.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left behind


def test_intermediate_evaluations_of_a_scaled_recipe_use_a_fixed_part_of_the_test_set():
    def eval_images(recipe, split_size):
        return recipe.resolve(50_000).cadence.intermediate_images(split_size)

    paper = recipes.RECIPES["paper"]
    assert eval_images(paper, 10_000) == 10_000  # the paper's schedule: every evaluation on all of it
    assert eval_images(paper.scaled(0.01), 10_000) == 1_000  # 10 x scale, here at the floor
    assert eval_images(paper.scaled(0.05), 10_000) == 5_000
    assert eval_images(paper.scaled(0.2), 10_000) == 10_000
    assert eval_images(paper.scaled(0.01), 300) == 300  # never more than the split
    assert eval_images(recipes.RECIPES["smoke"], 10_000) == 500  # a recipe's own eval_subset wins


def test_a_run_records_the_evaluation_subset_and_ends_on_the_whole_test_set(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    monkeypatch.setattr(recipes, "EVAL_IMAGES_FLOOR", 30)
    # a 1/20 paper schedule shrunk to a few iterations: 10 x 0.05 of the 100 test images, 30 at least
    plan = replace(recipes.RECIPES["paper"], iterations=8, milestones=(4, 6), batch_size=32, log_every=2,
                   checkpoint_every=4, eval_points=4, scale=0.05)
    limits = []
    evaluate = train.TrainingPath.evaluate
    monkeypatch.setattr(train.TrainingPath, "evaluate",
                        lambda self, split, limit=0: (limits.append(limit), evaluate(self, split, limit))[1])
    outcome = train.run(Request(TINY_NET, "cifar10", plan), Source(root, download=False), tmp_path,
                        train.Execution(torch.device("cpu")), wandb_mode="disabled", quiet=True)
    assert limits == [50, 50, 50, 0]  # iterations 2, 4, 6 on the first 50 images; the final one on all 100
    config = json.loads(outcome.record.config_path.read_text())
    assert config["evaluation"] == {"intermediate_test_images": 50, "final_test_images": 100}
    assert outcome.summary["test_error"] == outcome.record.metrics()[-1]["test/error"]


def test_a_resumed_run_keeps_the_evaluation_subset_of_its_checkpoint(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    monkeypatch.setattr(recipes, "EVAL_IMAGES_FLOOR", 30)
    plan = replace(recipes.RECIPES["paper"], iterations=8, milestones=(4, 6), batch_size=32, log_every=2,
                   checkpoint_every=4, eval_points=4, scale=0.05)
    limits, real_append = [], RunRecord.append_metrics
    evaluate = train.TrainingPath.evaluate
    monkeypatch.setattr(train.TrainingPath, "evaluate",
                        lambda self, split, limit=0: (limits.append(limit), evaluate(self, split, limit))[1])

    def run():
        return train.run(Request(TINY_NET, "cifar10", plan), Source(root, download=False), tmp_path,
                         train.Execution(torch.device("cpu")), wandb_mode="disabled", quiet=True)

    def killed_at_6(self, row):
        if row["iteration"] == 6:  # after the checkpoint at 4
            raise KeyboardInterrupt
        real_append(self, row)

    monkeypatch.setattr(RunRecord, "append_metrics", killed_at_6)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(RunRecord, "append_metrics", real_append)
    # a checkpoint from the code before the rule: no "evaluation" in it, so every point used the whole set
    (path,) = tmp_path.glob("runs/*/checkpoint.pt")
    state = torch.load(path, weights_only=False)
    assert state["evaluation"]["intermediate_test_images"] == 50
    del state["evaluation"]
    torch.save(state, path)
    limits.clear()
    outcome = run()
    assert limits == [100, 0]  # iteration 6 on all 100 images as before the checkpoint, then the final one
    config = json.loads(outcome.record.config_path.read_text())
    assert config["evaluation"] == {"intermediate_test_images": 100, "final_test_images": 100}
