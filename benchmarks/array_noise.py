"""fp32's own noise floor, against which a run array's agreement with its runs alone is read.

An array (paths.ArrayPath) computes what its runs alone compute, in other kernels: a grouped convolution
for K convolutions, batch norm over stacked channels. In float64 the two agree to 1e-10 (tests/test_arrays.py);
in fp32 every kernel rounds its sums in its own order, and SGD amplifies a last-bit difference step by step.
How far that goes is measured here against a second oracle that has nothing to do with arrays: the same run
alone in the other memory layout (channels_last against contiguous: other convolution kernels, same math).
Per step and seed, the relative gap in the step's training loss (its forward, after the steps before) of (a) the array against the runs alone and (b) the runs
alone in the other layout against them; then the same for the test loss after the last step.

    python benchmarks/array_noise.py --data-dir /tmp/cifar [--spec resnet20] [--steps 10]
"""

from __future__ import annotations

import argparse
import datetime
import platform
from dataclasses import replace
from pathlib import Path

import torch

import variants
from bench import recipe as recipes
from bench.data import Source
from bench.execution import Execution, cpu_name
from bench.paths import ArrayPath, TrainingPath

SEEDS = (0, 1, 2)


def _gaps(measured, reference):
    return [abs(loss / expected - 1) for (loss, _), (expected, _) in zip(measured, reference)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--out", default="results/perf/cpu/array-noise.md")
    args = parser.parse_args()

    plan = recipes.RECIPES["smoke"].resolve(50000, None)
    data = Source(args.data_dir, download=False).load("cifar10", plan.inputs)
    execution = Execution(torch.device("cpu"), precision="fp32", channels_last=True, compile="off")

    def net(seed):
        torch.manual_seed(seed)  # the run's initialisation, as train.py draws it
        return variants.create(variants.parse(args.spec), num_classes=data.num_classes)

    array = ArrayPath([net(seed) for seed in SEEDS], data, plan, SEEDS, execution)
    alone = [TrainingPath(net(seed), data, plan, seed, execution) for seed in SEEDS]
    other = [TrainingPath(net(seed), data, plan, seed, replace(execution, channels_last=False)) for seed in SEEDS]
    streams = [loader.batches(0) for loader in array.loaders]
    rows = []
    for step in range(args.steps):
        batches = [next(stream) for stream in streams]
        lr = plan.schedule.lr_at(step)
        array.train_step(batches, [lr] * len(SEEDS))
        for (images, labels), first, second in zip(batches, alone, other):
            first.step(images, labels, lr)
            second.step(images, labels, lr)
        reference = [path.totals() for path in alone]
        rows.append((step + 1, _gaps(array.seed_totals(), reference), _gaps([p.totals() for p in other], reference)))
    reference = [path.evaluate(data.test, args.eval_images) for path in alone]
    test_gaps = (_gaps(array.seed_evaluation(data.test, args.eval_images), reference),
                 _gaps([path.evaluate(data.test, args.eval_images) for path in other], reference))

    def cells(gaps):
        return " / ".join(f"{gap:.0e}" for gap in gaps)

    lines = [
        f"# fp32's noise floor: a run array against its runs alone ({cpu_name()} (cpu))", "",
        f"{datetime.date.today()}; {platform.system()}; torch {torch.__version__}; {args.spec}, seeds "
        f"{', '.join(map(str, SEEDS))}, the smoke recipe's batch {plan.inputs.batch_size} and learning rate, fp32.", "",
        f"Command: `python benchmarks/array_noise.py --data-dir {args.data_dir} --spec {args.spec} --steps {args.steps}`",
        "", __doc__.split("\n\n")[1].replace("\n", " "), "",
        "| step | array vs alone (seeds 0 / 1 / 2) | alone, other layout, vs alone (seeds 0 / 1 / 2) |",
        "|---:|---|---|",
        *(f"| {step} | {cells(array_gaps)} | {cells(layout_gaps)} |" for step, array_gaps, layout_gaps in rows),
        f"| test loss, {args.eval_images} images | {cells(test_gaps[0])} | {cells(test_gaps[1])} |", "",
        f"Largest gap: array {max(max(r[1]) for r in rows):.1e}, other layout {max(max(r[2]) for r in rows):.1e} "
        f"(training loss); array {max(test_gaps[0]):.1e}, other layout {max(test_gaps[1]):.1e} (test loss).", "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
