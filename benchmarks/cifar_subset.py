"""A smaller CIFAR-10 in the same format: the first N images of each batch file (5 training batches, the test
batch), so that a whole smoke suite with several seeds fits in a CPU session. A full-size smoke suite evaluates
10,000 test images four times a run; with 1,000 a batch it trains on 5,000 images and tests on 1,000.

    python benchmarks/cifar_subset.py /tmp/cifar /tmp/cifar-small --per-batch 1000

SRC and DST are data folders (each holding cifar-10-batches-py/), as `--data-dir` takes them.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def subset(source: Path, target: Path, per_batch: int) -> None:
    source, target = source / "cifar-10-batches-py", target / "cifar-10-batches-py"
    target.mkdir(parents=True, exist_ok=True)
    for name in BATCHES:
        with open(source / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        cut = {key: (value[:per_batch] if key in (b"data", b"labels", b"filenames") else value)
               for key, value in batch.items()}
        with open(target / name, "wb") as handle:
            pickle.dump(cut, handle)
    with open(source / "batches.meta", "rb") as handle:
        meta = pickle.load(handle, encoding="bytes")
    for key in ("num_cases_per_batch", b"num_cases_per_batch"):  # str keys or bytes keys, as the file has them
        if key in meta:
            meta[key] = per_batch
    with open(target / "batches.meta", "wb") as handle:
        pickle.dump(meta, handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a data folder with cifar-10-batches-py/")
    parser.add_argument("target", type=Path, help="where the smaller copy goes")
    parser.add_argument("--per-batch", type=int, default=1000, help="images kept from each batch file (default 1000)")
    args = parser.parse_args()
    if not 1 <= args.per_batch <= 10000:
        parser.error(f"--per-batch {args.per_batch} is not allowed: it must be 1 to 10000")
    if not (args.source / "cifar-10-batches-py").is_dir():
        parser.error(f"{args.source} has no cifar-10-batches-py/ (make it with make_cifar10.py or a download)")
    subset(args.source, args.target, args.per_batch)
    print(f"written: {args.target / 'cifar-10-batches-py'} ({5 * args.per_batch} training, {args.per_batch} test images)")


if __name__ == "__main__":
    main()
