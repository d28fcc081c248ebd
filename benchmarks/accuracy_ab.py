"""Same budget, same seeds: test error of the standard PyTorch recipe (A) and of the suite's runner (B).

The speed-ups of `python -m bench perf` (device-resident data, batched augmentation, channels_last, bf16 where
it is faster) must not change results. This trains `spec` with both on the paper's schedule scaled by
`--scale` and reports each seed's test error. B uses per-channel normalisation here, as A does, so that the
two differ only in how they execute.

    python benchmarks/accuracy_ab.py --data-dir /tmp/cifar [--spec resnet20] [--scale 0.1] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
from pathlib import Path

from bench import data as datasets
from bench import recipe as recipes
from bench import standard, train
from bench.runs import Request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the paper's 64k iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="Markdown output (default: results/perf/<cpu|cuda>/accuracy.md)")
    args = parser.parse_args()

    device = train.resolve_device(args.device)
    data = datasets.load("cifar10", args.data_dir, download=False)
    plan = recipes.get("paper", args.scale).resolve(len(data.train))
    rows = []
    with tempfile.TemporaryDirectory(prefix="accuracy-ab-") as results:
        for seed in args.seeds:
            a = standard.train(args.spec, data, plan, seed, device)
            print(f"seed {seed} A: test error {a['test_error']:.2f}%, {a['train_img_s']:.0f} img/s", flush=True)
            request = Request(args.spec, recipe="paper", scale=args.scale, seed=seed, normalize="channel")
            outcome = train.run(request, datasets.Source(args.data_dir, download=False), results,
                                train.Execution(device), wandb_mode="disabled", force=True, quiet=True)
            b = outcome.summary
            print(f"seed {seed} B: test error {b['test_error']:.2f}%, {b['train_img_s']:.0f} img/s", flush=True)
            rows.append((seed, a, b))
        execution = train.Execution(device).resolved().describe()

    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"

    a_errors, b_errors = [a["test_error"] for _, a, _ in rows], [b["test_error"] for _, _, b in rows]
    lines = [
        f"# Test error at the same budget: standard recipe (A) and suite (B), `{args.spec}`",
        "",
        f"{datetime.date.today()}, {execution['device_name']}; paper schedule x{args.scale:g} "
        f"({plan.iterations} iterations of batch {plan.inputs.batch_size}, lr steps at "
        f"{', '.join(map(str, plan.schedule.milestones))}); "
        f"A: fp32 NCHW eager, PIL + DataLoader ({standard.default_workers()} workers); B: the runner, "
        f"{execution['precision']} {execution['memory_format']}, compile {execution['compile']}. Both normalise by "
        f"channel.",
        f"Command: `python benchmarks/accuracy_ab.py --data-dir DIR --spec {args.spec} --scale {args.scale:g} "
        f"--seeds {' '.join(map(str, args.seeds))}`",
        "",
        "| seed | A test error % | B test error % | A train img/s | B train img/s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {seed} | {a['test_error']:.2f} | {b['test_error']:.2f} | {a['train_img_s']:.0f} | "
              f"{b['train_img_s']:.0f} |" for seed, a, b in rows]
    lines += [f"| mean ± sd | {spread(a_errors)} | {spread(b_errors)} | | |"]
    report = "\n".join(lines) + "\n"
    out = Path(args.out or f"results/perf/{device.type}/accuracy.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print("\n" + report + f"\nwritten to {out}")


if __name__ == "__main__":
    main()
