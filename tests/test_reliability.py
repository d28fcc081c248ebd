"""Reliability and safety under real use, each on tiny data in the real layout: a full disk at a checkpoint, two
suites on one results folder, a suite stopped by SIGTERM or killed by SIGKILL, a data file that would run code,
and names in a suite file that would write outside the results folder."""

import errno
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from bench import data, records, train
from bench import suite as suites
from bench.cli import main
from bench.records import RunRecord
from bench.runs import Request

TINY_NET = "cifar(depth=8)"
SUITE = """
name = "pair"
dataset = "cifar10"

[experiments.depth]
title = "Depth"
report = "depth"
runs = ["cifar(depth=8)", "cifar(depth=8,shortcut=none)"]
"""
ONE_RUN = SUITE.replace(', "cifar(depth=8,shortcut=none)"', "")


def train_argv(root, results, *extra):
    return ["train", TINY_NET, "--recipe", "smoke", "--data-dir", str(root), "--results-dir", str(results),
            "--wandb", "disabled", "--device", "cpu", *extra]


def the_run(results) -> RunRecord:
    (folder,) = (results / "runs").iterdir()
    return RunRecord(results, folder.name)


def curve(record):
    return [{k: v for k, v in row.items() if not k.startswith("throughput/")} for row in record.metrics()]


# ---- a full disk ---------------------------------------------------------------------------------------------

def fail_the_second_checkpoint(monkeypatch, error: BaseException):
    """torch.save succeeds once, then fails as a full disk makes it fail."""
    real_save, calls = torch.save, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real_save(*args, **kwargs)

    monkeypatch.setattr(records.torch, "save", save)


@pytest.mark.slow
@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
])
def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_same_command_resumes(tmp_path, tiny_cifar10, monkeypatch,
                                                                              capsys, error):
    root, _ = tiny_cifar10
    results = tmp_path / "results"
    argv = train_argv(root, results, "--checkpoint-every", "10")
    fail_the_second_checkpoint(monkeypatch, error)
    assert main(argv) == 1
    err = capsys.readouterr().err
    record = the_run(results)
    assert err.count("\n") == 1 and err.startswith(f"error: out of space in {record.dir} (disk or quota): ") and "Traceback" not in err
    # the simulated full disk has room on it: what did not fit is said as such
    assert "MB free on the disk, and the checkpoint did not fit" in err and "run the same command again" in err
    summary = record.summary()
    assert summary["status"] == "failed" and summary["reason"].startswith(f"out of space in {record.dir} (disk or quota)")
    assert record.load_checkpoint()["iteration"] == 10  # the previous checkpoint, intact
    monkeypatch.undo()
    assert main(argv) == 0
    assert "(resuming from iteration 10)" in capsys.readouterr().out
    whole = train.run(Request(TINY_NET, "cifar10", "smoke"), data.Source(root, download=False), tmp_path / "whole",
                      train.Execution(torch.device("cpu")), wandb_mode="disabled", quiet=True)
    assert record.status() == "finished" and curve(record) == curve(whole.record)


def test_torch_reports_a_full_disk_as_a_runtime_error_and_that_is_a_full_disk_too(tmp_path, tiny_cifar10,
                                                                                 monkeypatch, capsys):
    root, _ = tiny_cifar10
    results = tmp_path / "results"
    real_save, calls = torch.save, []

    def save(state, handle, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # what torch raises when the disk (or the quota) fills up mid-write
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 818560 vs 818456")
        return real_save(state, handle, **kwargs)

    monkeypatch.setattr(records.torch, "save", save)
    assert main(train_argv(root, results, "--checkpoint-every", "10")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: out of space in ") and "Traceback" not in err
    assert the_run(results).summary()["reason"].startswith("out of space in ")
    assert the_run(results).load_checkpoint()["iteration"] == 10


def test_a_results_folder_without_room_for_two_checkpoints_is_said_before_training(tmp_path, tiny_cifar10,
                                                                                 monkeypatch, capsys):
    root, _ = tiny_cifar10
    monkeypatch.setattr(train, "free_bytes", lambda folder: 50_000)  # the tiny net's checkpoint: 0.6 MB
    assert main(train_argv(root, tmp_path / "results")) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "has 0.0 MB free; a checkpoint of this run takes about 0.6 MB" in warning[0]


def test_a_cache_the_disk_cannot_hold_is_one_line_before_any_image_is_decoded(tmp_path, monkeypatch, capsys):
    from bench.data import folder
    from test_folder import write_folder

    root = write_folder(tmp_path / "images")
    monkeypatch.setattr(folder, "free_bytes", lambda path: 1000)
    assert main(train_argv(root, tmp_path / "results", "--dataset", f"folder:{root}", "--cache-dir",
                           str(tmp_path / "cache"))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: out of space in {tmp_path / 'cache'} (disk or quota): 0.0 MB free, the train cache "
                          f"needs about ")
    assert err.strip().endswith("(or pass another --cache-dir) and run the same command again")
    assert not list((tmp_path / "cache").glob("*.u8"))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_a_real_full_tmpfs_as_results_folder(tmp_path, tiny_cifar10):
    """The same, on a file system that is really full: a 400 kB tmpfs holds the records of the tiny net until
    its first checkpoint (0.6 MB); once it is 4 MB, the same command finishes."""
    root, _ = tiny_cifar10
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        argv = [sys.executable, "-m", "bench", *train_argv(root, disk / "results")]
        full = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert full.returncode == 1 and "Traceback" not in full.stderr
        assert full.stderr.splitlines()[-1].startswith("error: out of space in ")
        assert the_run(disk / "results").status() == "failed"
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
        assert the_run(disk / "results").status() == "finished"
    finally:
        subprocess.run(["umount", str(disk)])


# ---- two suites, one results folder --------------------------------------------------------------------------

def suite_process(suite_file, root, results, *extra):
    argv = [sys.executable, "-m", "bench", "suite", str(suite_file), "--recipe", "smoke", "--data-dir", str(root),
            "--results-dir", str(results), "--wandb", "disabled", "--device", "cpu", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_suites_on_one_folder_both_finish_and_train_each_run_once(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    suite_file = tmp_path / "pair.toml"
    suite_file.write_text(SUITE)
    results = tmp_path / "results"
    first, second = (suite_process(suite_file, root, results) for _ in range(2))
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    both = "\n".join(outputs)
    assert "failed:" not in both and " failed " not in both.replace("0 failed", "")
    assert "is being trained elsewhere" in both  # they met on a run, and one waited for the other
    planned = suites.expand(suites.load(suite_file), "smoke", 1.0)
    for run in planned:
        record = RunRecord(results, run.run_id)
        assert record.status() == "finished"
        assert [row["iteration"] for row in record.metrics()] == list(range(5, 41, 5))  # trained once, not twice
    for log in (results / "suites" / "pair" / "logs").glob("*.log"):
        text = log.read_text()
        assert text.count("finished: test error") == 1, text  # one attempt trained it; others were turned away
        assert text.startswith("==== ")  # every attempt under a header naming its process


# ---- stopped and killed suites ---------------------------------------------------------------------------------

def start_and_wait_for_a_checkpoint(tmp_path, root):
    suite_file = tmp_path / "one.toml"
    suite_file.write_text(ONE_RUN)
    results = tmp_path / "results"
    process = suite_process(suite_file, root, results, "--scale", "5", "--checkpoint-every", "10")
    deadline = time.monotonic() + 300
    while not list(results.glob("runs/*/checkpoint.pt")):
        assert time.monotonic() < deadline and process.poll() is None, "no checkpoint appeared"
        time.sleep(0.05)
    children = psutil.Process(process.pid).children(recursive=True)
    assert children  # the training process
    return suite_file, results, process, children


def wait_gone(processes, seconds=60):
    gone, alive = psutil.wait_procs(processes, timeout=seconds)
    return alive


@pytest.mark.slow
def test_sigterm_stops_a_suite_as_ctrl_c_does_and_the_rerun_finishes(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    suite_file, results, process, children = start_and_wait_for_a_checkpoint(tmp_path, root)
    process.send_signal(signal.SIGTERM)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 143, out
    assert wait_gone(children, 5) == []  # no training process behind
    assert "interrupted: run the same command again" in out and "1 interrupted" in out
    assert the_run(results).status() == "interrupted"
    rerun = suite_process(suite_file, root, results, "--scale", "5", "--checkpoint-every", "10")
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, out
    assert re.search(r"1 runs, 0 already done, 1 to train, 1 of them resuming where they stopped \(\d+% done\)", out), out
    assert re.search(r"\[1/1\] finished .* resumed at \d+% of its iterations", out), out
    assert the_run(results).status() == "finished"
    (log,) = (results / "suites" / "pair" / "logs").glob("*.log")
    assert "(resuming from iteration" in log.read_text() and log.read_text().count("==== ") == 2


@pytest.mark.slow
def test_a_killed_suite_leaves_no_training_process_and_the_rerun_finishes(tmp_path, tiny_cifar10):
    root, _ = tiny_cifar10
    suite_file, results, process, children = start_and_wait_for_a_checkpoint(tmp_path, root)
    process.kill()  # SIGKILL: the suite runs nothing more; its child is told by the kernel (PR_SET_PDEATHSIG)
    process.wait()
    assert wait_gone(children, 60) == []
    assert the_run(results).status() == "interrupted"  # the child got SIGTERM and recorded where it was
    rerun = suite_process(suite_file, root, results, "--scale", "5", "--checkpoint-every", "10")
    out = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, out
    assert the_run(results).status() == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_to_bench_train_records_interrupted_and_exits_143(tmp_path, tiny_cifar10, monkeypatch, capsys,
                                                                   signum, status):
    root, _ = tiny_cifar10
    argv = train_argv(root, tmp_path / "results", "--checkpoint-every", "10")
    step, steps = train.TrainingPath.step, []

    def signalled_at_25(self, *args):  # the signal arrives mid-run, as `kill PID` sends it
        steps.append(1)
        if len(steps) == 25:
            os.kill(os.getpid(), signum)
        step(self, *args)

    monkeypatch.setattr(train.TrainingPath, "step", signalled_at_25)
    before = signal.getsignal(signum)  # another library (wandb) may have installed its own earlier
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().endswith(
        "interrupted: the run resumes from its last checkpoint when the same command is run again")
    record = the_run(tmp_path / "results")
    assert record.status() == "interrupted" and record.load_checkpoint()["iteration"] == 20
    # the 5 steps after the last log point count as training time (under torchrun log points are minutes apart)
    assert record.summary()["train_seconds"] > round(record.load_checkpoint()["train_seconds"], 3)
    assert signal.getsignal(signum) == before  # the command's handler is its own, put back when it ends
    monkeypatch.undo()
    assert main(argv) == 0 and record.status() == "finished"


# ---- files that are not what they claim ----------------------------------------------------------------------

class RunsACommand:
    """What a hostile pickle holds: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_cifar_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path, tiny_cifar10, capsys):
    root, _ = tiny_cifar10
    marker = tmp_path / "it-ran"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps(RunsACommand(marker)))
    with pytest.raises(data.DataError) as refused:
        data.load("cifar10", root, download=False)
    assert not marker.exists()
    assert str(refused.value).startswith(f"{batch}: refused: it asks to load posix.system, which a CIFAR batch never "
                                         f"holds")
    assert main(train_argv(root, tmp_path / "results")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused: it asks to load posix.system" in err and not marker.exists()
    # a dict that holds the command (the payload one level down) is refused the same way
    batch.write_bytes(pickle.dumps({"data": RunsACommand(marker), "labels": [0]}))
    with pytest.raises(data.DataError, match="refused: it asks to load posix.system"):
        data.load("cifar10", root, download=False)
    assert not marker.exists()


def test_the_cifar_reader_builds_what_the_format_holds_under_old_and_new_numpy_names(tmp_path):
    import io

    import numpy as np

    from bench.data import cifar

    array = np.arange(12, dtype=np.uint8).reshape(2, 6)
    written = pickle.dumps({b"data": array, b"labels": [1, 2], b"batch_label": b"x"}, protocol=2)
    # the original CIFAR pickles (Python 2, numpy 1) name numpy.core; numpy 2 writes numpy._core
    old = written.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if b"numpy._core" in written else written
    for payload in (written, old):
        path = tmp_path / "batch"
        path.write_bytes(payload)
        loaded = cifar.read_pickle(path)
        assert np.array_equal(loaded[b"data"], array) and loaded[b"labels"] == [1, 2]
    assert cifar.BatchUnpickler(io.BytesIO(pickle.dumps([b"a", "b", 1.5, None])), encoding="latin1").load()


@pytest.mark.parametrize("text, message", [
    ('name = "../x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = []\n',
     "name: '../x' is not allowed: a suite's name is letters, digits, '-', '_' and '.'"),
    ('name = "/tmp/x"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = []\n',
     "name: '/tmp/x' is not allowed"),
    ('name = "x"\ndataset = "cifar10"\n[experiments."a/b"]\ntitle = "t"\nreport = "depth"\nruns = []\n',
     "experiments.a/b: the key 'a/b' is not allowed: an experiment's key is letters, digits"),
    ('name = "x"\ndataset = "cifar10"\n[experiments.".."]\ntitle = "t"\nreport = "depth"\nruns = []\n',
     "the key '..' is not allowed"),
    ('name = "x\\n"\ndataset = "cifar10"\n[experiments.a]\ntitle = "t"\nreport = "depth"\nruns = []\n',
     "name: 'x\\n' is not allowed"),
])
def test_names_that_would_write_outside_the_results_folder_are_refused(tmp_path, text, message, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(suites.SuiteError, match=re.escape(message)):
        suites.load(path)
    assert main(["suite", str(path), "--results-dir", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob("results/reports/*"))


def test_every_path_from_a_name_stays_under_its_folder(tmp_path):
    assert records.within(tmp_path, "runs", "abc") == tmp_path / "runs" / "abc"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "linked").symlink_to(tmp_path / "elsewhere")  # a run folder moved to another disk
    assert records.within(tmp_path / "runs", "linked") == tmp_path / "runs" / "linked"
    for name in ("../x", "/etc", "a/../../b"):
        with pytest.raises(records.UserError, match="would lie outside"):
            records.within(tmp_path, name)
    with pytest.raises(records.UserError, match="would lie outside"):
        RunRecord(tmp_path, "../../elsewhere")
