"""The suite on a real Ray instance: same records as the local launcher, a killed worker retried to the same
result, and a results folder the workers cannot see stopped with one line."""

import os
import signal
import threading
import time

import pytest
import ray

from bench import launch
from bench.cli import main
from bench.records import RunRecord

TIMING = ("throughput/train_img_s", "throughput/inference_img_s")
TWO_RUNS = """
name = "pair"
dataset = "cifar10"

[experiments.depth]
title = "Depth"
report = "depth"
runs = ["cifar(depth=8)", "cifar(depth=8,shortcut=none)"]
"""
ONE_RUN = TWO_RUNS.replace(', "cifar(depth=8,shortcut=none)"', "")


@pytest.fixture
def ray_two_cpus():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def two_node_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def suite_argv(suite, data, results, *extra):
    return ["suite", str(suite), "--recipe", "smoke", "--data-dir", str(data), "--results-dir", str(results),
            "--wandb", "disabled", "--device", "cpu", *extra]


def outcomes(results):
    """Every run's id, final figures and metric rows, less the timings (which no two runs share)."""
    found = {}
    for summary_path in sorted((results / "runs").glob("*/summary.json")):
        record = RunRecord(results, summary_path.parent.name)
        summary = record.summary()
        rows = [{key: value for key, value in row.items() if key not in TIMING} for row in record.metrics()]
        found[record.run_id] = (summary["status"], summary["test_error"], summary["test_loss"],
                                summary["train_loss"], rows)
    return found


@pytest.mark.slow
def test_ray_backend_writes_the_same_records_as_local(tmp_path, tiny_cifar10, ray_two_cpus, capsys):
    root, _ = tiny_cifar10
    suite = tmp_path / "pair.toml"
    suite.write_text(TWO_RUNS)
    assert main(suite_argv(suite, root, tmp_path / "local")) == 0
    assert main(suite_argv(suite, root, tmp_path / "ray", "--backend", "ray")) == 0
    out = capsys.readouterr().out
    assert "suite pair: 2 runs, 0 already done, 2 to train (recipe smoke x1, 1 at a time)" in out
    # the two CPUs of the Ray instance hold one CPU run: a run takes all CPUs of a node, as locally
    assert "suite pair: 2 runs, 0 already done, 2 to train (recipe smoke x1, 1 at a time on ray)" in out
    local, on_ray = outcomes(tmp_path / "local"), outcomes(tmp_path / "ray")
    assert len(local) == 2 and set(local) == set(on_ray)
    assert local == on_ray  # bit-identical: same ids, final metrics and every logged row
    assert (tmp_path / "ray" / "reports" / "pair" / "smoke-x1" / "depth.md").exists()
    assert not list((tmp_path / "ray").glob(".ray-probe-*"))  # the shared-folder probes are cleaned up


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_run_finishes_as_an_uninterrupted_one(tmp_path, tiny_cifar10,
                                                                               two_node_cluster):
    root, _ = tiny_cifar10
    suite = tmp_path / "one.toml"
    suite.write_text(ONE_RUN)
    # 200 iterations with a checkpoint every 10: time to kill the worker between two checkpoints
    options = ("--backend", "ray", "--cpus-per-run", "1", "--scale", "5", "--checkpoint-every", "10")
    assert main(suite_argv(suite, root, tmp_path / "whole", *options)) == 0

    killed = tmp_path / "killed"
    statuses = []
    driver = threading.Thread(target=lambda: statuses.append(main(suite_argv(suite, root, killed, *options))))
    driver.start()
    log = killed / "suites" / "pair" / "logs"
    deadline = time.monotonic() + 300
    while not list((killed / "runs").glob("*/checkpoint.pt")):
        assert time.monotonic() < deadline and driver.is_alive(), "the run never wrote a checkpoint"
        time.sleep(0.02)
    (log_file,) = log.glob("*.log")
    worker_pid = int(log_file.read_text().split("worker pid ")[1].split()[0])
    os.kill(worker_pid, signal.SIGKILL)  # as when a node is lost: the task's worker dies with the trainer
    driver.join(timeout=300)
    assert statuses == [0]
    attempts = log_file.read_text().count("[ray] node ")
    assert attempts == 2, log_file.read_text()
    assert "resuming from iteration" in log_file.read_text()
    assert outcomes(killed) == outcomes(tmp_path / "whole")


@pytest.mark.slow
def test_a_results_folder_the_workers_cannot_see_is_one_line(tmp_path, tiny_cifar10, ray_two_cpus, monkeypatch,
                                                              capsys):
    root, _ = tiny_cifar10
    suite = tmp_path / "one.toml"
    suite.write_text(ONE_RUN)
    node_local = tmp_path / "node-local-disk"
    node_local.mkdir()
    write_probe = launch._write_probe

    def on_another_disk(directory, name):  # as a node with its own disk at the same path would
        return write_probe(str(node_local), name)

    monkeypatch.setattr(launch, "_write_probe", on_another_disk)
    assert main(suite_argv(suite, root, tmp_path / "results", "--backend", "ray")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: --results-dir {(tmp_path / 'results').resolve()} is not shared with Ray node ")
    assert "every node mounts at the same path" in err
    assert not list((tmp_path / "results").glob("runs/*"))  # nothing trained


def test_ray_options_need_the_ray_backend(capsys):
    assert main(["suite", "cifar10", "--gpus-per-run", "0.25"]) == 2
    assert capsys.readouterr().err == "error: --gpus-per-run applies to --backend ray only\n"
    assert main(["suite", "cifar10", "--backend", "ray", "--device", "cuda:1"]) == 2
    assert "choose one of: auto, cpu, cuda (Ray assigns each run its GPU)" in capsys.readouterr().err
