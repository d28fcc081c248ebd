"""Progress and ETAs as a new user meets them: plain lines where no terminal draws a bar (a log file, `| tee`,
a suite child's log), and times left from the work left and the speed of this invocation, so that a run that
resumed near its end does not claim the whole run's speed."""

import io
import re
from pathlib import Path

from bench import progress
from bench import suite as suites
from bench.cli import main

LINE = re.compile(r"^progress: iteration [\d,]+/[\d,]+ \(\d+%\), [\d,]+ img/s, ETA \d+(\.\d)? (s|min)(, at iteration "
                  r"[\d,]+: loss \d+\.\d{3}, train error \d+\.\d%, lr \S+)?$")


def test_a_train_whose_output_is_not_a_terminal_prints_progress_lines(tmp_path, tiny_cifar10, monkeypatch, capsys):
    root, _ = tiny_cifar10
    monkeypatch.setattr(progress, "LINE_EVERY", 0.05)  # the default is 30 s; the run here takes a few seconds
    assert main(["train", "cifar(depth=8)", "--recipe", "smoke", "--data-dir", str(root), "--results-dir",
                 str(tmp_path / "results"), "--wandb", "disabled", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress:")]
    assert lines and all(LINE.match(line) for line in lines), lines
    assert any(", at iteration " in line for line in lines)  # the curves' latest values once a log point passed


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_resumed_runs_eta_counts_only_its_remaining_iterations_at_this_attempts_speed(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    out = io.StringIO()
    resumed = progress.Progress(total=1000, initial=900, batch_size=10, stream=out)
    assert resumed.lines  # a StringIO is no terminal
    clock.now += 10.0  # 10 iterations in 10 s since it resumed: 1 it/s, 90 iterations left
    resumed.line(910)
    # the whole run's count (910 iterations in 10 s) would claim 910 img/s and an ETA of 1 s
    assert out.getvalue() == "progress: iteration 910/1,000 (91%), 10 img/s, ETA 1.5 min\n"


def test_a_suites_eta_counts_the_work_left_of_a_resumed_run(tmp_path):
    experiment = suites.Experiment("pair", "t", "compare", ("cifar(depth=8)",))
    suite = suites.Suite("s", "cifar10", Path("s.toml"), {"pair": experiment}, "smoke")
    first, second = suites.expand(suite, "smoke", 1.0, seeds=2)
    estimate = suites._CostEstimate([first, second], 10, 32, {first.run_id: 0.9, second.run_id: 0.0})
    # the first resumed at 90% and took 10 s for the last 10%; the second has all of its work left: 100 s
    estimate.record(first, 10.0, {"status": "finished", "iterations": 200, "iterations_planned": 200})
    assert estimate.remaining([second], jobs=1) == "1.7 min"
    assert estimate.remaining([second], jobs=2) == "50 s"


def test_durations_read_in_the_unit_a_person_reads():
    assert [progress.duration(s) for s in (45, 150, 5400, 4 * 3600, 183 * 3600)] == [
        "45 s", "2.5 min", "1.5 h", "4.0 h", "7.6 days"]


def test_the_cost_line_says_the_work_the_speed_the_time_and_what_it_leaves_out():
    import torch

    from bench.forecast import Speed, Work, line

    works = [Work("resnet20", 128 * 1_000, 40_000_000), Work("resnet56", 128 * 1_000, 120_000_000)]
    speed = Speed(512.0, "3 timed steps of resnet20 on cpu")
    # 128,000 images at 512 img/s, and 128,000 at 3x the MACs: 250 s + 750 s = 1000 s; 3 x 20.5 P forward MACs
    assert line(works, speed, 40_000_000, torch.device("cpu"), recipe="paper", scale=1.0) == (
        "cost: 2 runs, 256,000 images (40M to 120M MACs each), about 61.4 TMACs to train; at 512 img/s (3 timed "
        "steps of resnet20 on cpu, the others scaled by their MACs) that is about 16.7 min of training steps "
        "(evaluation and each run's start come on top)")
    smoke = line(works[:1], speed, 40_000_000, torch.device("cpu"), recipe="smoke", scale=1.0)
    assert smoke.endswith("that is about 4.2 min of training steps (evaluation and each run's start come on top: "
                          "most of a smoke run's time)")
    long = line([Work("resnet20", 128 * 64_000, 40_000_000)], speed, 40_000_000, torch.device("cpu"),
                recipe="paper", scale=1.0)
    assert long.endswith("; cheaper: --recipe smoke checks the pipeline in minutes; --scale 0.1 trains a tenth of "
                         "this (about 26.7 min); a GPU (--device cuda) trains these nets tens of times faster")
