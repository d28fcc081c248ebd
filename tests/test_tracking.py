"""W&B hygiene (bench/tracking.py): one W&B run id over all attempts at a run, each offline attempt's directory
complete on its own (offline runs cannot resume: `wandb sync` keeps one directory per id), resumed online runs
not sent steps W&B would drop, and a report uploaded again only when it changed. Read back from the offline
run files W&B writes."""

import json
import time

import pytest
import torch

from bench import tracking, train
from bench import suite as suites
from bench.commands.report import report_suite
from bench.data import Source
from bench.records import RunRecord
from bench.runs import Request
from test_dashboard import logged, wandb_records
from test_report import fake_records

TINY_NET = "cifar(depth=8)"
# One experiment of test_report's synthetic records: resnet20 seeds 0 and 1 finished, resnet32 seed 0 missing.
SUITE = """
name = "synthetic"
dataset = "cifar10"

[experiments.depth]
title = "Depth vs error"
report = "depth"
runs = ["resnet20", "resnet32"]
"""


def smoke(results, data_root, wandb_mode="offline", force=False):
    """The smoke recipe (40 iterations, rows every 5, checkpoints at 20) mirrored to W&B offline."""
    return train.run(Request(TINY_NET, "cifar10", "smoke"), Source(data_root, download=False), results,
                     train.Execution(torch.device("cpu")), wandb_mode=wandb_mode, force=force, quiet=True)


def interrupt_at(monkeypatch, iteration):
    """Ctrl-C when the row of `iteration` is about to be recorded (as test_train's resume tests do)."""
    real_append = RunRecord.append_metrics

    def append(self, row):
        if row["iteration"] == iteration:
            raise KeyboardInterrupt
        real_append(self, row)

    monkeypatch.setattr(RunRecord, "append_metrics", append)


def offline_runs(results):
    """{offline directory name: (W&B run id, {step: the values logged at it})}, oldest directory first, once W&B
    has flushed its files (wandb.teardown, as at the end of a process)."""
    import wandb

    wandb.teardown()
    found = {}
    for path in sorted((results / "wandb").glob("offline-run-*/run-*.wandb")):
        run_id, history = None, {}
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run_id = record.run.run_id
            elif kind == "history":
                values = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                          for item in record.history.item}
                history.setdefault(values["_step"], {}).update(values)
        found[path.parent.name] = (run_id, history)
    return found


def next_second():
    """Offline directories are named by the second their run started: two attempts need two seconds."""
    time.sleep(1.05 - time.time() % 1)


def two_attempts(results, root, monkeypatch, stop_at: int):
    """A smoke run interrupted at iteration `stop_at`, then run again to the end, W&B offline: the finished
    outcome, the status and checkpoint the interruption left, and both attempts' offline directories."""
    interrupt_at(monkeypatch, stop_at)
    with pytest.raises(KeyboardInterrupt):
        smoke(results, root)
    monkeypatch.undo()
    first = next(RunRecord(results, path.name) for path in (results / "runs").iterdir())
    left = (first.status(), first.load_checkpoint())
    next_second()
    return smoke(results, root), left, offline_runs(results)


@pytest.mark.slow
def test_rerun_of_a_run_stopped_before_its_first_checkpoint_continues_its_wandb_run(tmp_path, tiny_cifar10,
                                                                                   monkeypatch):
    results = tmp_path / "results"
    outcome, (status, checkpoint), runs = two_attempts(results, tiny_cifar10[0], monkeypatch, 15)  # checkpoint: 20
    assert status == "interrupted" and checkpoint is None
    assert outcome.status == "finished"
    assert len(runs) == 2
    (earlier_id, earlier), (later_id, later) = runs.values()
    assert earlier_id == later_id and sorted(earlier) == [5, 10]
    assert sorted(later) == [row["iteration"] for row in outcome.record.metrics()] == list(range(5, 41, 5))
    # the record holds the id from the first summary on
    assert outcome.summary["wandb_id"] == later_id and later_id.startswith(outcome.run_id + "-")


@pytest.mark.slow
def test_resumed_offline_attempt_holds_the_rows_before_its_checkpoint(tmp_path, tiny_cifar10, monkeypatch):
    results = tmp_path / "results"
    outcome, _, runs = two_attempts(results, tiny_cifar10[0], monkeypatch, 25)  # after the checkpoint at 20
    assert outcome.status == "finished"
    assert len(runs) == 2
    (earlier_id, earlier), (later_id, later) = runs.values()
    assert earlier_id == later_id and sorted(earlier) == [5, 10, 15, 20]
    rows = outcome.record.metrics()
    assert sorted(later) == [row["iteration"] for row in rows] == list(range(5, 41, 5))
    for row in rows:  # 5-20 replayed from metrics.jsonl, 25-40 logged as trained: the record's values, all
        assert {key: later[row["iteration"]].get(key) for key in row} == row


def test_forced_run_gets_a_wandb_id_of_its_own(tmp_path, tiny_cifar10, monkeypatch):
    root, _ = tiny_cifar10
    results = tmp_path / "results"
    interrupt_at(monkeypatch, 15)
    with pytest.raises(KeyboardInterrupt):
        smoke(results, root, wandb_mode="disabled")
    monkeypatch.undo()
    record = next(RunRecord(results, path.name) for path in (results / "runs").iterdir())
    earlier = record.summary()["wandb_id"]
    next_second()  # the timestamp in the id
    outcome = smoke(results, root, force=True, wandb_mode="disabled")
    assert outcome.status == "finished" and outcome.summary["wandb_id"] != earlier


class FakeResumedRun:
    """What wandb.init returns for a run W&B resumed server-side: its steps end at 20 (starting_step 21)."""

    resumed, starting_step = True, 21

    def __init__(self):
        self.logged = []

    def define_metric(self, *args, **kwargs):
        pass

    def log(self, metrics, step):
        self.logged.append(step)


def test_resumed_online_run_is_not_sent_the_steps_wandb_would_drop(tmp_path, monkeypatch):
    import wandb

    run = FakeResumedRun()
    monkeypatch.setattr(wandb, "init", lambda **kwargs: run)
    tracker = tracking.Tracker("online", "some-id", name="n", config={}, group="g", tags=[], directory=tmp_path)
    rows = [{"iteration": step} for step in range(5, 41, 5)]
    tracker.replay(rows)  # online: W&B has them already
    for row in rows:
        tracker.log(row, step=row["iteration"])
    assert run.logged == [25, 30, 35, 40]


# ---- reports --------------------------------------------------------------------------------------------------

def report_runs(results):
    """The offline report runs W&B holds: (directory, run id), oldest first."""
    import wandb

    wandb.teardown()
    found = []
    for path in sorted((results / "wandb").glob("offline-run-*/run-*.wandb")):
        recorded = logged(path)
        assert recorded["job_type"] == "report"
        run_id = next(record.run.run_id for record in wandb_records(path) if record.WhichOneof("record_type") == "run")
        found.append((path.parent.name, run_id))
    return found


@pytest.mark.slow
def test_report_is_uploaded_again_only_when_it_changed(tmp_path, capsys):
    path = tmp_path / "synthetic.toml"
    path.write_text(SUITE)
    results = tmp_path / "results"
    planned = suites.expand(suites.load(path), "paper", 0.05, seeds=2)
    fake_records(results, planned)

    def build():
        return report_suite(str(path), results_dir=results, recipe="paper", scale=0.05, seeds=2, wandb_mode="offline")

    out_dir = build()
    assert len(report_runs(results)) == 1
    capsys.readouterr()
    build()  # the same records: the same tables and byte-identical figures
    assert len(report_runs(results)) == 1
    assert capsys.readouterr().out.count("\n") <= 1  # a one-line note at most
    marker = json.loads((out_dir / tracking.REPORT_MARKER).read_text())
    assert marker["mode"] == "offline" and marker["wandb_id"] == "report-synthetic-paper-x0.05"

    missing = next(run for run in planned if (run.spec, run.seed) == ("resnet32", 0))
    record = RunRecord(results, missing.run_id)  # another run finished
    record.write_config({"spec": missing.spec, "recipe": {"name": "paper", "scale": 0.05, "iterations": 3200},
                         "execution": {"device_name": "Test CPU", "precision": "bf16"}})
    for iteration in (1600, 3200):
        record.append_metrics({"iteration": iteration, "train/error": 25.0, "test/error": 30.0})
    record.write_summary({"status": "finished", "test_error": 8.0, "train_img_s": 1000.0,
                          "updated_at": "2026-11-22T10:00:00+00:00"})
    next_second()
    build()
    runs = report_runs(results)
    assert len(runs) == 2 and {run_id for _, run_id in runs} == {"report-synthetic-paper-x0.05"}
    assert json.loads((out_dir / tracking.REPORT_MARKER).read_text())["fingerprint"] != marker["fingerprint"]
