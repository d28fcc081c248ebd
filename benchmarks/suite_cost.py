"""What each built-in suite costs to train in full: its runs, training images and multiply-adds, and the GPU
hours those make at a given rate. An estimate, not a measurement: the rate is one measured figure applied to
every net.

Work is counted as the cost line before every training counts it (bench/forecast.py): a training step costs
about three forward passes, so a run's work is 3 x its forward MACs (fvcore, at the recipe's resolution) x the
images it trains. The default rate, 3.6 TMAC/s, is what ResNet-20 reached on an H100 (29.7k img/s at batch 128
with CUDA graphs: 29.7k x 3 x 40.8M MACs). Small CIFAR nets leave a large GPU mostly idle, so wide nets and
ImageNet nets at 224 px run at a higher rate and the hours of suites dominated by them are upper bounds.

    python benchmarks/suite_cost.py [--rate TMACS] [--seeds N]
"""

from __future__ import annotations

import argparse

from bench import data as datasets
from bench import suite as suites
from bench.cost import measure

# Training images of each dataset's split as the recipes resolve epochs against it (CIFAR's recipes count
# iterations; Imagenette: the 160 px release's train/ folder; ImageNet: ILSVRC2012's train split).
TRAIN_IMAGES = {"cifar10": 50_000, "imagenette": 9_469, "imagenet": 1_281_167}
SUITES = ("cifar10", "identity", "imagenette", "imagenet")


def suite_cost(name: str, expensive: bool, seeds: int) -> tuple[int, int, float]:
    """Runs, training images and multiply-adds (3 x forward MACs x images) of the whole suite at its recipe."""
    suite = suites.load(name)
    declared = datasets.info(suite.dataset)
    planned = suites.expand(suite, seeds=seeds, expensive=expensive)
    images = work = 0
    macs: dict[tuple[str, int], int] = {}
    for run in planned:
        recipe = run.run.recipe
        trained = recipe.resolve(TRAIN_IMAGES[suite.dataset]).iterations * recipe.batch_size
        size = recipe.image_size or declared.image_size
        if (run.spec, size) not in macs:
            macs[run.spec, size] = measure(run.spec, image_size=size, num_classes=declared.num_classes or 1000).macs
        images += trained
        work += 3 * macs[run.spec, size] * trained
    return len(planned), images, work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=3.6, help="TMAC/s the GPU trains at (default: 3.6, see above)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per spec (default: 1)")
    args = parser.parse_args()
    print(f"| suite | runs | training images | TMACs to train | estimated GPU hours at {args.rate:g} TMAC/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in SUITES:
        rows = {expensive: suite_cost(name, expensive, args.seeds) for expensive in (False, True)}
        (runs, images, work), (more, _, more_work) = rows[False], rows[True]
        extra = more > runs
        print(f"| `{name}` | {runs}" + (f" ({more} with --expensive)" if extra else "") + f" | {images:,} | "
              f"{work / 1e12:,.0f} | {work / args.rate / 1e12 / 3600:,.1f}"
              + (f" ({more_work / args.rate / 1e12 / 3600:,.1f})" if extra else "") + " |", flush=True)


if __name__ == "__main__":
    main()
