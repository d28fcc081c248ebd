"""Training speed of the runner's own loop on this machine, for each precision and memory format.

Runs `bench.train.run` (the real data path and loop, not a copy) for a short fixed budget in each setting,
alternating settings round by round so that machine drift hits all of them alike, and reports the median
train images/s of each as a ratio to fp32 NCHW from the same invocation.

    python benchmarks/precision.py --data-dir /tmp/cifar [--spec resnet20] [--iterations 150] [--repeats 2]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from bench import data, train
from bench.recipe import RECIPES
from bench.runs import Request

SETTINGS = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="results/perf/precision.md")
    args = parser.parse_args()

    iterations = args.iterations
    recipe = replace(RECIPES["paper"], name="speed", iterations=iterations, milestones=(iterations,),
                     log_every=iterations, checkpoint_every=iterations, eval_points=1, eval_subset=1000)
    speeds: dict[tuple[str, bool], list[float]] = {setting: [] for setting in SETTINGS}
    with tempfile.TemporaryDirectory() as results:
        for round_index in range(args.repeats):
            for precision, channels_last in SETTINGS:
                execution = train.Execution(torch.device("cpu"), precision=precision, channels_last=channels_last)
                outcome = train.run(Request(args.spec, recipe=recipe), data.Source(args.data_dir), results, execution,
                                    wandb_mode="disabled", force=True, quiet=True)
                speed = outcome.summary["train_img_s"]
                speeds[(precision, channels_last)].append(speed)
                print(f"round {round_index + 1}: {precision} {'channels_last' if channels_last else 'NCHW'}: {speed:.0f} img/s")

    baseline = statistics.median(speeds[("fp32", False)])
    lines = [
        f"# Train images/s of `{args.spec}` by precision and memory format",
        "",
        f"{datetime.date.today()}, {train.Execution(torch.device('cpu')).describe()['device_name']}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; batch 128, {iterations} iterations "
        f"per measurement, median of {args.repeats}, settings alternated round by round.",
        f"Command: `python benchmarks/precision.py --data-dir DIR --spec {args.spec} --iterations {iterations} "
        f"--repeats {args.repeats}`",
        "",
        "| precision | memory format | train img/s (median) | runs | vs fp32 NCHW |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (precision, channels_last), values in speeds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {precision} | {'channels_last' if channels_last else 'NCHW'} | {median:.0f} | {runs} | "
                     f"{median / baseline:.2f}x |")
    report = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print("\n" + report + f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
