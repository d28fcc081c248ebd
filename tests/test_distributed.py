"""One run data-parallel on 2 CPU ranks with gloo: torchrun's real entry point for records, a killed rank and
resume; torch.multiprocessing on `train.run` for the first step's loss."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import variants
from bench import data as datasets
from bench import distributed, train
from bench import recipe as recipes
from bench.cli import main
from bench.errors import UserError
from bench.records import RunRecord
from bench.runs import Request

TINY_NET = "cifar(depth=8)"
# 200 iterations of the smoke recipe on the tiny data, a checkpoint every 10: long enough to kill a rank in
DEMO = ["--recipe", "smoke", "--scale", "5", "--checkpoint-every", "10", "--wandb", "disabled", "--device", "cpu",
        "--no-download"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--monitor-interval", "0.1",
            "-m", "bench", "train", TINY_NET]


def torchrun(root, results, *extra, **options):
    return subprocess.Popen([*TORCHRUN, "--data-dir", str(root), "--results-dir", str(results), *DEMO, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **options)


def curves(record):
    return [{k: v for k, v in row.items() if not k.startswith("throughput/")} for row in record.metrics()]


def only_run(results):
    (run_dir,) = (results / "runs").iterdir()
    return RunRecord(results, run_dir.name)


@pytest.mark.parametrize("stream", [False, True])
def test_ranks_batches_partition_the_single_process_batch(stream):
    generator = torch.Generator().manual_seed(0)
    split = datasets.Split(torch.randint(0, 256, (300, 3, 8, 8), dtype=torch.uint8, generator=generator),
                           torch.arange(300))
    options = dict(window=64 if stream else None, stream=stream, device=torch.device("cpu"))
    whole = datasets.EpochLoader(split, 32, seed=4, **options)
    ranks = [datasets.EpochLoader(split, 32, seed=4, part=(rank, 2), **options) for rank in range(2)]
    for step, ((images, labels), *parts) in enumerate(zip(whole.batches(epoch=3), *(r.batches(epoch=3) for r in ranks),
                                                      strict=True)):
        assert [len(p[1]) for p in parts] == [16, 16]
        # crops and flips included: the augmentation's draws are cut the same way as the order
        assert torch.equal(torch.cat([p[0] for p in parts]), images)
        assert torch.equal(torch.cat([p[1] for p in parts]), labels)
    assert step + 1 == whole.steps_per_epoch == 9
    resumed = list(ranks[1].batches(epoch=3, start=7))
    assert torch.equal(resumed[0][1], list(whole.batches(epoch=3, start=7))[0][1][16:])


@pytest.mark.slow
def test_two_rank_run_writes_one_record_with_the_one_process_run_id(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    child = torchrun(root, tmp_path / "two")
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, out
    record = only_run(tmp_path / "two")
    one_process_id = Request(TINY_NET, "cifar10", "smoke", 5.0).resolve().run_id
    assert record.run_id == one_process_id
    # one set of records: no second run folder, no checkpoint left, nothing else in the results folder
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["runs"]
    assert {p.name for p in record.dir.iterdir()} - {"source.diff"} == \
        {".lock", "config.json", "metrics.jsonl", "summary.json"}
    assert out.count("run ") == 1 and out.count("finished: test error") == 1  # rank 0 alone speaks
    config = json.loads(record.config_path.read_text())
    assert config["execution"]["world_size"] == 2 and config["execution"]["sync_bn"] is False
    summary = record.summary()
    assert summary["status"] == "finished" and summary["iterations"] == 200
    rows = record.metrics()
    assert [row["iteration"] for row in rows] == list(range(5, 201, 5))

    # killed in the middle: rank 1 gets SIGKILL once a checkpoint exists; rank 0 records the run as failed,
    # naming it, and the same command resumes to exactly the uninterrupted run's curves
    killed = tmp_path / "killed"
    child = torchrun(root, killed, start_new_session=True)
    checkpoint = killed / "runs" / record.run_id / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists():
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()[0]
        time.sleep(0.05)
    os.kill(rank_pid(child.pid, 1), signal.SIGKILL)
    out, _ = child.communicate(timeout=120)
    assert child.returncode != 0
    failed = RunRecord(killed, record.run_id).summary()
    assert failed["status"] == "failed" and failed["reason"].startswith("rank 1 (")
    assert "stopped without a word: killed, or its node lost" in failed["reason"]
    assert f"error: run {record.run_id} failed: rank 1 (" in out

    child = torchrun(root, killed)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, out
    assert "(resuming from iteration " in out
    resumed = RunRecord(killed, record.run_id)
    assert resumed.summary()["status"] == "finished"
    assert curves(resumed) == curves(record)  # bit-identical to the uninterrupted two-rank run


def rank_pid(torchrun_pid, rank):
    """The pid of the worker torchrun started as `rank` (its environment says RANK=rank)."""
    import psutil

    for process in psutil.Process(torchrun_pid).children(recursive=True):
        try:
            if process.environ().get("RANK") == str(rank):
                return process.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no rank {rank} under torchrun {torchrun_pid}")


def one_step(name):
    """The smoke recipe cut to its first step, logged: the first row holds the first step's loss."""
    return replace(recipes.RECIPES["smoke"], name=name, iterations=1, milestones=(), log_every=1, eval_points=1,
                   checkpoint_every=1)


def _rank_main(rank, port, root, results, plan, failing_rank=None):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    torch.set_num_threads(1)
    if rank == failing_rank:
        step, steps = train.TrainingPath.step, []

        def failing_step(self, *args):
            steps.append(1)
            if len(steps) == 12:
                raise OSError("No space left on device")
            step(self, *args)

        train.TrainingPath.step = failing_step
    train.run(Request(TINY_NET, recipe=plan), datasets.Source(root, download=False), results,
              train.Execution(torch.device("cpu"), precision="fp32"), wandb_mode="disabled", quiet=True)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_first_step_loss_matches_one_rank_up_to_batch_norm(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    plan = one_step("first-step")
    torch.multiprocessing.start_processes(_rank_main, args=(free_port(), root, tmp_path / "two", plan), nprocs=2,
                                          start_method="spawn")
    two_ranks = only_run(tmp_path / "two").metrics()[0]["train/loss"]
    one = train.run(Request(TINY_NET, recipe=plan), datasets.Source(root, download=False), tmp_path / "one",
                    train.Execution(torch.device("cpu"), precision="fp32"), wandb_mode="disabled", quiet=True)
    one_rank = one.record.metrics()[0]["train/loss"]

    # The oracle: the single process's first batch and net, with batch norm taking its statistics over each
    # half on its own, as each of the two ranks does over its 32 images. DDP changes nothing else.
    data = datasets.load("cifar10", root, download=False)
    torch.manual_seed(0)  # as the runner seeds before it builds the net
    path = train.TrainingPath(variants.create(variants.parse(TINY_NET), num_classes=10), data,
                              plan.resolve(len(data.train)), 0,
                              train.Execution(torch.device("cpu"), precision="fp32"))
    images, labels = next(path.loader.batches(0))
    halves = [F.cross_entropy(path.model(path.normalizer(images[i:i + 32], path.execution.memory_format)),
                              labels[i:i + 32]).item() for i in (0, 32)]
    assert two_ranks == pytest.approx(sum(halves) / 2, rel=1e-6)
    # Against the one-rank loss over all 64 images the only difference is batch norm's statistics (32 images
    # per rank, not 64): at initialisation that moves the loss by well under 1%.
    assert two_ranks == pytest.approx(one_rank, rel=0.01)
    assert two_ranks != one_rank


@pytest.mark.slow
def test_a_rank_that_fails_is_named_in_the_record(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    plan = recipes.RECIPES["smoke"]
    with pytest.raises(torch.multiprocessing.ProcessRaisedException):
        torch.multiprocessing.start_processes(_rank_main, args=(free_port(), root, tmp_path, plan, 1), nprocs=2,
                                              start_method="spawn")
    summary = only_run(tmp_path).summary()
    assert summary["status"] == "failed" and summary["iterations"] == 11  # rank 1 failed in its 12th step
    assert summary["reason"].startswith("rank 1 (")
    assert summary["reason"].endswith(" failed: OSError: No space left on device")


@pytest.mark.parametrize("environment, extra, message", [
    ({"WORLD_SIZE": "2", "RANK": "0"}, ["--sync-bn"], "error: --sync-bn needs CUDA ranks: torch's SyncBatchNorm runs on GPUs only"),
    ({"WORLD_SIZE": "3", "RANK": "0"}, [], "error: the recipe's batch of 64 does not split evenly over 3 ranks; choose a world size that divides it"),
    ({"WORLD_SIZE": "two"}, [], "error: RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)"),
])
def test_parallel_mistakes_are_one_line(tmp_path, tiny_cifar10, monkeypatch, capsys, environment, extra, message):
    root, _ = tiny_cifar10
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    code = main(["train", TINY_NET, "--data-dir", str(root), "--results-dir", str(tmp_path), "--recipe", "smoke",
                 "--device", "cpu", "--wandb", "disabled", "--no-download", *extra])
    assert code == 2
    assert capsys.readouterr().err.strip() == message


def test_a_cuda_rank_takes_the_gpu_of_its_local_rank():
    world = distributed.World(rank=3, size=4, local_rank=1)
    assert world.device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(UserError, match="each rank takes the GPU of its local rank"):
        world.device(torch.device("cuda", 0))


def test_a_cuda_rank_sets_its_device_before_the_process_group_starts(monkeypatch):
    """NCCL and broadcast_object_list work on the current device: set after init_process_group (or never),
    rank 1 stages rank 0's objects on cuda:0 and its first broadcast fails."""
    import torch.distributed as dist

    calls = []

    class Started(Exception):
        pass

    def init_process_group(backend, **options):
        calls.append(("init_process_group", backend, options["device_id"]))
        raise Started  # no real NCCL here: what came before is the point

    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    gpu = torch.device("cuda", 1)
    with pytest.raises(Started):
        distributed.Session(distributed.World(rank=1, size=2, local_rank=1), gpu)
    assert calls == [("set_device", gpu), ("init_process_group", "nccl", gpu)]


def _judging_session(monkeypatch, beats_of_rank1):
    """Rank 0's Session of a 2-rank world over an in-process store, rank 1's heartbeat as given."""
    monkeypatch.setattr(distributed, "SILENCE_SECONDS", 0.1)
    session = distributed.Session.__new__(distributed.Session)
    session.world, session.store = distributed.World(rank=0, size=2), torch.distributed.HashStore()
    session._judged, session._stopping = False, False
    session.store.set("bench/host/1", "node-b pid 7")
    session.store.add("bench/beat/0", 1)
    session.store.add("bench/beat/1", beats_of_rank1)
    return session


def test_a_rank_that_raised_in_a_collective_and_died_is_named_with_its_error(monkeypatch):
    """Rank 1's own error (here the one a rank without set_device raises) names it, not a silent death."""
    session = _judging_session(monkeypatch, 5)
    error = torch.distributed.DistBackendError("Tensor found on device cuda:0 but backend constrained to cuda:1")
    rank1 = distributed.Session.__new__(distributed.Session)
    rank1.world, rank1.store = distributed.World(rank=1, size=2), session.store
    rank1.fail(error)  # as rank 1's train.run does before it exits
    verdict = session.judge(torch.distributed.DistError("gloo: Connection closed by peer"))
    assert verdict == ("failed", "rank 1 (node-b pid 7) failed: DistBackendError: Tensor found on device cuda:0 "
                                 "but backend constrained to cuda:1")


def test_a_rank_that_died_without_a_word_is_named_so(monkeypatch):
    session = _judging_session(monkeypatch, 5)
    verdict = session.judge(torch.distributed.DistError("gloo: Connection closed by peer"))
    assert verdict == ("failed", "rank 1 (node-b pid 7) stopped without a word: killed, or its node lost")


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_bench_torchrun_ends_a_stop_with_the_signals_status_not_a_traceback(monkeypatch, capsys, signum, status):
    import torch.distributed.run as torchrun_module
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from bench import torchrun

    def stopped(argv):  # what torchrun's agent raises when Ctrl-C or SIGTERM reaches it
        raise SignalException(f"Process {os.getpid()} got signal: {int(signum)}", sigval=signal.Signals(signum))

    monkeypatch.setattr(torchrun_module, "main", stopped)
    assert torchrun.main(["--nproc-per-node", "2", "-m", "bench", "train", "resnet20"]) == status
    assert capsys.readouterr().err == (f"torchrun: stopped by {signal.Signals(signum).name}; the ranks recorded "
                                       f"where they were\n")
