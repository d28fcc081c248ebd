"""Command line of the suite: ``python -m bench COMMAND``.

User mistakes (a bad spec, a bad option) end as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import variants

from . import compare, cost, dashboard, data, distributed, launch, perf, report, standard, train
from . import suite as suites
from .errors import UserError
from . import recipe as recipes

EPILOG = """\
spec strings: NAME or NAME(key=value,...), e.g. resnet56, resnet34(shortcut=A),
resnet50(stem=deep,shortcut=D), resnet50b(se=true), cifar(depth=38), timm/resnet50d.
keys:
  depth: cifar 6n+2 (20, 32, ..., 1202); imagenet 18, 34, 50, 101, 152
  blocks: blocks per stage, a-b-c (cifar) or a-b-c-d (imagenet)
""" + "".join(f"  {axis.name}{'=true|false' if axis.flag else ''}: {axis.meaning}\n"
             for axis in variants.Spec.chosen_axes() if axis.key)


class _CommandListFormatter(argparse.RawDescriptionHelpFormatter):
    """Each command's help on one line beside its name: argparse measures the command names without the
    indentation it then prints them at, so the longest (`dashboard`) would push its help to the next line."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=16, width=130)
        self._action_max_length = 16


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark suite for ResNet variants (He et al. 2015, Bag of Tricks).",
        epilog=EPILOG,
        formatter_class=_CommandListFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="list the named variants with one-line descriptions")
    list_parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet5*' (default: all)")
    list_parser.set_defaults(run=run_list)

    measure_parser = commands.add_parser(
        "measure",
        help="parameters and multiply-adds (MACs = the paper's FLOPs) of a variant, per stage",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    measure_parser.add_argument("spec", help="variant spec string, e.g. resnet50 or 'resnet34(shortcut=A)'")
    measure_parser.add_argument("--image-size", type=int, metavar="N",
                                help="input is N x N (default: 32 for cifar nets, 224 otherwise)")
    measure_parser.add_argument("--num-classes", type=int, metavar="K",
                                help="classes of the fc layer (default: 10 for cifar nets, 1000 otherwise)")
    measure_parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    measure_parser.set_defaults(run=run_measure)

    train_parser = commands.add_parser(
        "train",
        help="train a variant on a dataset with a recipe; records in RESULTS/runs/<run_id>/, mirrored to W&B",
        description="Train one variant. The run id is derived from (spec, dataset, recipe, scale, seed): asking "
                    "for a finished run again does nothing, an interrupted one resumes from its last checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_parser.add_argument("spec", help="variant spec string, e.g. resnet20 or 'resnet32(shortcut=B)'")
    train_parser.add_argument("--dataset", default="cifar10", metavar="NAME", help=DATASET_HELP)
    train_parser.add_argument("--data-dir", default="data", metavar="DIR", help=DATA_DIR_HELP)
    train_parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing data")
    train_parser.add_argument("--recipe", choices=list(recipes.RECIPES), help=RECIPE_HELP)
    train_parser.add_argument("--scale", type=float, default=1.0, metavar="F",
                              help="multiply every iteration count of the recipe by F (default: 1)")
    train_parser.add_argument("--seed", type=int, default=0, metavar="N", help="(default: 0)")
    train_parser.add_argument("--val-split", type=int, metavar="N",
                              help="hold out N training images for validation (the paper used 5000; default: none)")
    train_parser.add_argument("--normalize", choices=["pixel", "channel"],
                              help="pixel: the paper's per-pixel mean subtraction (default); channel: per-channel mean/std")
    train_parser.add_argument("--results-dir", default="results", metavar="DIR", help="(default: results)")
    train_parser.add_argument("--wandb", choices=["online", "offline", "disabled"],
                              help="W&B mode (default: online when an API key is configured, else offline)")
    train_parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:I")
    train_parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                              help="bf16 autocast, plain fp32, or auto (default): bf16 on GPUs that support it and "
                                   "CPUs with AMX, fp32 elsewhere")
    train_parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW tensors (default: channels_last)")
    train_parser.add_argument("--compile", default="auto", choices=train.Execution.COMPILE_MODES,
                              help="torch.compile mode, or auto (default): reduce-overhead (CUDA graphs) on CUDA, "
                                   "off on the CPU and under torchrun")
    train_parser.add_argument("--sync-bn", action="store_true",
                              help="under torchrun on GPUs: batch norm over the whole global batch (SyncBatchNorm), "
                                   "not over each rank's share")
    train_parser.add_argument("--checkpoint-every", type=int, metavar="N",
                              help="iterations between checkpoints (default: the recipe's, 2000 x scale for paper); a "
                                   "multiple of the recipe's log interval; not part of the run id")
    train_parser.add_argument("--force", action="store_true", help="discard an existing record of this run and train again")
    train_parser.add_argument("--data-placement", default="auto", choices=data.loader.PLACEMENTS,
                              help="auto (default): the training split whole on the device when it takes at most "
                                   "half its free memory, else streamed in windows from the cache; the batches are "
                                   "the same either way")
    _add_folder_options(train_parser)
    train_parser.epilog = TORCHRUN_EPILOG
    train_parser.formatter_class = argparse.RawDescriptionHelpFormatter
    train_parser.set_defaults(run=run_train)

    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("suite", help=f"suite name ({', '.join(suites.available_suites())}) or path to a .toml file; "
                                         f"`./run_all.sh cifar10 ARGS` runs `python -m bench suite cifar10 ARGS`")
    selection.add_argument("--recipe", choices=list(recipes.RECIPES),
                           help="(default: the suite's: paper for cifar10, bot for imagenette, imagenet for imagenet)")
    selection.add_argument("--scale", type=float, default=1.0, metavar="F", help="schedule scale (default: 1)")
    selection.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 of every run (default: 1)")
    selection.add_argument("--expensive", action="store_true", help="also the runs a suite marks expensive (resnet1202)")
    selection.add_argument("--results-dir", default="results", metavar="DIR", help="(default: results)")
    selection.add_argument("--wandb", choices=["online", "offline", "disabled"],
                           help="W&B mode (default: online when an API key is configured, else offline)")

    suite_parser = commands.add_parser(
        "suite", parents=[selection],
        help="train every run of a suite that has no finished record, then build its reports",
        description="Train the runs of a suite (skipping those already finished or diverged; an interrupted "
                    "suite continues where it stopped), then build the reports. One failed run is recorded "
                    "and the suite goes on; the exit status is 1 when any run failed.",
    )
    suite_parser.add_argument("--only", metavar="EXPERIMENT[,EXPERIMENT]",
                              help="train only these experiments (the reports still cover the whole suite)")
    suite_parser.add_argument("--data-dir", default="data", metavar="DIR", help=DATA_DIR_HELP)
    suite_parser.add_argument("--jobs", type=int, metavar="N",
                              help="trainings at once (default: one per visible GPU, 1 on CPU)")
    suite_parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:I (default: auto)")
    suite_parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                              help="as for train (default: auto)")
    suite_parser.add_argument("--compile", default="auto", choices=train.Execution.COMPILE_MODES,
                              help="as for train (default: auto)")
    suite_parser.add_argument("--checkpoint-every", type=int, metavar="N",
                              help="as for train (default: the recipe's); not part of the run ids")
    scale_out = suite_parser.add_argument_group(
        "where the runs execute",
        "local (default): child processes on this machine. ray: each run a task on a Ray cluster (pip install -e "
        "\".[ray]\"); a task lost with its node is retried and resumes from its checkpoint. --results-dir (and "
        "--data-dir) must be the same path on every node.")
    scale_out.add_argument("--backend", choices=launch.BACKENDS, default="local", help="(default: local)")
    scale_out.add_argument("--ray-address", metavar="auto|HOST:PORT",
                           help="the Ray cluster to join: auto finds the one `ray start` started on this machine "
                                "(default: start a Ray instance for this suite alone)")
    scale_out.add_argument("--gpus-per-run", type=float, metavar="F",
                           help="GPUs Ray gives each run; 0.25 packs four small runs on one GPU (default: 1 when "
                                "the cluster has GPUs and --device is not cpu, else 0)")
    scale_out.add_argument("--cpus-per-run", type=float, metavar="N",
                           help="CPUs Ray gives each run, also its thread count (default: 1 beside a GPU, else "
                                "all CPUs of the smallest node)")
    _add_folder_options(suite_parser)
    suite_parser.set_defaults(run=run_suite)

    compare_parser = commands.add_parser(
        "compare", help="is X better than Y? train what is missing over several seeds, then test the difference",
        description="Train each spec over seeds 0..N-1 (finished runs are reused, through the same records as "
                    "suites), then write a comparison page (table with mean, std, 95% CI, n; the difference from "
                    "the first spec with its 95% CI and Welch's t-test; curves; final errors with CIs) under "
                    "RESULTS/reports/compare-.../ and print the verdicts.",
        epilog="example: python -m bench compare resnet20 'resnet20(shortcut=B)' --seeds 3 --scale 0.01 --data-dir D",
    )
    compare_parser.add_argument("specs", nargs="+", metavar="SPEC",
                                help="two or more variant specs; the first is the baseline the others are tested against")
    compare_parser.add_argument("--dataset", default="cifar10", metavar="NAME", help=DATASET_HELP)
    compare_parser.add_argument("--seeds", type=int, default=3, metavar="N",
                                help="seeds 0..N-1 of every spec (default: 3; at least 2 for any claim)")
    compare_parser.add_argument("--recipe", choices=list(recipes.RECIPES),
                                help="(default: the dataset's: paper for CIFAR, bot for Imagenette)")
    compare_parser.add_argument("--scale", type=float, default=1.0, metavar="F", help="schedule scale (default: 1)")
    compare_parser.add_argument("--data-dir", default="data", metavar="DIR", help=DATA_DIR_HELP)
    compare_parser.add_argument("--results-dir", default="results", metavar="DIR", help="(default: results)")
    compare_parser.add_argument("--wandb", choices=["online", "offline", "disabled"],
                                help="W&B mode (default: online when an API key is configured, else offline)")
    compare_parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:I (default: auto)")
    compare_parser.add_argument("--jobs", type=int, metavar="N",
                                help="trainings at once (default: one per visible GPU, 1 on CPU)")
    _add_folder_options(compare_parser)
    compare_parser.set_defaults(run=run_compare)

    report_parser = commands.add_parser(
        "report", parents=[selection],
        help="build the Markdown/CSV/PNG reports of a suite from RESULTS/runs (and mirror them to W&B)",
    )
    report_parser.set_defaults(run=run_report)

    perf_parser = commands.add_parser(
        "perf", help="training speed of the suite (B) against the standard PyTorch recipe (A), side by side",
        description="Measure, in one process and alternating A B A B, training / data-pipeline / inference "
                    "images/s and peak memory of the standard recipe (A: PIL + torchvision transforms + "
                    "DataLoader workers, fp32 NCHW eager) and of the suite's own training path (B), the cost of "
                    "W&B offline logging, and B's step time against depth and batch size. Writes perf.csv, "
                    "perf.md and scaling.png to OUT.",
    )
    perf_parser.add_argument("specs", nargs="*", default=["resnet20"], metavar="SPEC",
                             help="variants to compare (default: resnet20)")
    perf_parser.add_argument("--dataset", default="cifar10", metavar="NAME", help=DATASET_HELP)
    perf_parser.add_argument("--data-dir", default="data", metavar="DIR", help=DATA_DIR_HELP)
    perf_parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:I (default: auto)")
    perf_parser.add_argument("--iters", type=int, metavar="N",
                             help="timed training iterations per measurement (default: 30 on CPU, 200 on CUDA; 10 and "
                                  "100 at ImageNet resolution)")
    perf_parser.add_argument("--warmup", type=int, metavar="N", help="untimed iterations first (default: 3 on CPU, 20 on CUDA)")
    perf_parser.add_argument("--repeats", type=int, default=3, metavar="K", help="median of K measurements (default: 3)")
    perf_parser.add_argument("--batch-size", type=int, metavar="B",
                             help="(default: the dataset's recipe's: 128 for CIFAR, the paper's; 256 for ImageNet-style)")
    perf_parser.add_argument("--workers", type=int, metavar="N",
                             help="A's DataLoader worker processes (default: one per usable core)")
    perf_parser.add_argument("--depths", nargs="*", metavar="SPEC",
                             help="specs for step time against depth (default: resnet/plain 20-110 on CIFAR, none on "
                                  "other datasets; none: skip)")
    perf_parser.add_argument("--batch-sizes", nargs="*", type=int, metavar="B",
                             help="batch sizes for step time against batch size (default: 64 128 256 512 1024 on "
                                  "CIFAR, none on other datasets)")
    perf_parser.add_argument("--scaling-steps", type=int, metavar="N",
                             help="timed steps per repeat of each depth / batch-size point (default: 10 on CPU, "
                                  "50 on CUDA)")
    perf_parser.add_argument("--scaling-repeats", type=int, default=5, metavar="K",
                             help="repeats of each depth / batch-size point, interleaved across the points; each "
                                  "point is reported as the median with its min-max range, and residual against "
                                  "plain differences inside that range as noise (default: 5)")
    perf_parser.add_argument("--no-wandb", action="store_true",
                             help="skip the W&B logging-cost measurement (always skipped on other datasets than "
                                  "CIFAR: the cost of logging does not depend on the data)")
    perf_parser.add_argument("--out", metavar="DIR",
                             help="output folder (default: results/perf/<cpu|cuda>, or results/perf/<cpu|cuda>-<dataset> "
                                  "for other datasets than cifar10)")
    _add_folder_options(perf_parser)
    perf_parser.set_defaults(run=run_perf)
    dashboard.add_parser(commands)
    return parser


DATASET_HELP = (f"one of: {data.names()} (default: cifar10). folder:PATH is any folder holding "
                "train/<class>/<images> and val/<class>/<images>")
DATA_DIR_HELP = ("folder holding the dataset: cifar-10-batches-py/ or cifar-100-python/ for CIFAR; for imagenette and "
                 "imagewoof, a release folder (imagenette2-160/, -320/ or imagenette2/) or the release itself; for "
                 "imagenet, train/ and val/ class folders. CIFAR, Imagenette and Imagewoof are downloaded there if "
                 "missing (default: ./data)")
RECIPE_HELP = ("paper: the CIFAR recipe of §4.2 (64k iterations); imagenet: §3.4 (120 epochs at 224 px; on Imagenette "
               "20 epochs at 128 px); bot: Bag of Tricks' training (warm-up, cosine, label smoothing, no BN decay, "
               "zero-gamma; same budgets); smoke: a few iterations for tests (default: the dataset's: paper for CIFAR, "
               "bot for Imagenette/Imagewoof/folders, imagenet for ImageNet)")


def _add_folder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="ImageNet-style datasets: where the decoded uint8 cache is written (default: "
                             "DATA/.resnet-bench-cache, or ~/.cache/resnet-bench when the data folder is read-only)")
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="ImageNet-style datasets: leave out images that do not decode (listed in the run's "
                             "config.json) instead of stopping at the first")


def run_list(args: argparse.Namespace) -> int:
    names = variants.available(args.pattern)
    if not names:
        print(f"error: no variant matches {args.pattern!r} (try: python -m bench list)", file=sys.stderr)
        return 2
    width = max(map(len, names))
    for name in names:
        preset = variants.PRESETS[name]
        print(f"{name:<{width}}  {preset.title}: {variants.describe(preset.spec)}")
    if args.pattern == "*":
        print("\nAny name takes overrides, e.g. resnet34(shortcut=A); cifar(depth=N) and "
              "imagenet(blocks=a-b-c-d,block=...) build other sizes; timm/NAME builds a timm model.")
    return 0


def run_measure(args: argparse.Namespace) -> int:
    for option, value in (("--image-size", args.image_size), ("--num-classes", args.num_classes)):
        if value is not None and value < 1:
            print(f"error: {option} {value} is not allowed: it must be at least 1", file=sys.stderr)
            return 2
    spec = variants.parse(args.spec)
    try:
        result = cost.measure(spec, image_size=args.image_size, num_classes=args.num_classes)
    except RuntimeError as error:  # e.g. an image too small for the net's downsampling
        first_line = str(error).strip().splitlines()[0]
        print(f"error: cannot run {variants.canonical(spec)} at this size: {first_line}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{result.spec}: {variants.describe(spec)}")
    print(f"input {result.image_size}x{result.image_size}, {result.num_classes} classes, batch 1, eval mode")
    print(f"params  {result.params:>15,}  ({result.params / 1e6:.2f} M)")
    print(f"MACs    {result.macs:>15,}  ({result.macs / 1e9:.3f} G; the paper's \"FLOPs\" are multiply-adds)")
    print(f"\n{'part':<12}{'params':>15}{'MACs':>18}{'share':>8}")
    for stage in result.stages:
        share = stage.macs / result.macs if result.macs else 0.0
        print(f"{stage.name:<12}{stage.params:>15,}{stage.macs:>18,}{share:>8.1%}")
    skipped = ", ".join(f"{op} x{count}" for op, count in result.not_counted.items()) or "nothing"
    print(f"\nnot counted by fvcore: ReLU (ignored by design); ops without a handler: {skipped}")
    return 0


def _only(args: argparse.Namespace) -> list[str] | None:
    if args.only is None:
        return None
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if not names:
        raise UserError(f"--only {args.only!r} names no experiment")
    return names


def _build_report(args: argparse.Namespace) -> None:
    out_dir = report.build(args.suite, results_dir=args.results_dir, recipe=args.recipe, scale=args.scale,
                           seeds=args.seeds, expensive=args.expensive, wandb_mode=args.wandb)
    print(f"reports: {out_dir / 'index.md'}")


def _launcher(args: argparse.Namespace):
    """The launcher of `suite` (local or Ray) and of `compare` (local: it has no --backend)."""
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} is not allowed: it must be at least 1")
    ray_options = [name for name in ("ray_address", "gpus_per_run", "cpus_per_run")
                   if getattr(args, name, None) is not None]
    if getattr(args, "backend", "local") == "local":
        if ray_options:
            raise UserError(f"--{ray_options[0].replace('_', '-')} applies to --backend ray only")
        return launch.LocalLauncher(args.jobs or launch.default_jobs(args.device), args.device)
    return launch.RayLauncher(args.ray_address, args.device, args.gpus_per_run, args.cpus_per_run, args.jobs)


def run_suite(args: argparse.Namespace) -> int:
    suite = suites.load(args.suite)
    planned = suites.expand(suite, args.recipe, args.scale, args.seeds, _only(args), args.expensive)
    if args.backend == "local":  # with Ray, the devices are the cluster's, not this machine's
        train.resolve_device(args.device)
    elif args.device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {args.device} is not allowed with --backend ray; choose one of: auto, cpu, cuda "
                        f"(Ray assigns each run its GPU)")
    if args.checkpoint_every is not None:  # checked once here rather than failed by every training process
        budget = data.info(suite.dataset).budget
        replace(recipes.get(suite.recipe_or_default(args.recipe), args.scale, budget),
                checkpoint_every=args.checkpoint_every)
    launcher = _launcher(args)
    try:
        result = suites.run_suite(
            suite, planned, launcher, recipe=args.recipe, scale=args.scale, data_dir=args.data_dir,
            results_dir=args.results_dir, wandb_mode=args.wandb, cache_dir=args.cache_dir,
            skip_corrupt=args.skip_corrupt,
            extra_args=("--precision", args.precision, "--compile", args.compile) + (
                ("--checkpoint-every", str(args.checkpoint_every)) if args.checkpoint_every is not None else ()),
        )
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue where the suite stopped", file=sys.stderr)
        return 130
    finally:
        launcher.close()
    print(f"suite {suite.name}: {len(result.finished)} trained, {len(result.skipped)} already done, "
          f"{len(result.diverged)} diverged (a result, not a failure), {len(result.failed)} failed")
    for label, runs in (("diverged", result.diverged), ("failed", result.failed)):
        for planned_run in runs:
            where = Path(args.results_dir) / "runs" / planned_run.run_id
            print(f"  {label}: {planned_run.spec} seed {planned_run.seed} ({where})")
    try:
        _build_report(args)
    except Exception as error:  # the runs are recorded; a report can be rebuilt with `python -m bench report`
        print(f"error: building the reports failed ({type(error).__name__}: {error}); the runs are recorded, "
              f"retry with: python -m bench report {args.suite} ...", file=sys.stderr)
        return 1
    return 1 if result.failed else 0


def run_compare(args: argparse.Namespace) -> int:
    suite = compare.comparison_suite(args.specs, args.dataset)
    planned = suites.expand(suite, args.recipe, args.scale, args.seeds)
    train.resolve_device(args.device)
    launcher = _launcher(args)
    try:
        result = suites.run_suite(suite, planned, launcher, recipe=args.recipe, scale=args.scale,
                                  data_dir=args.data_dir, results_dir=args.results_dir, wandb_mode=args.wandb,
                                  cache_dir=args.cache_dir, skip_corrupt=args.skip_corrupt)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue where the comparison stopped", file=sys.stderr)
        return 130
    finally:
        launcher.close()
    out_dir = report.build(suite, results_dir=args.results_dir, recipe=args.recipe, scale=args.scale,
                           seeds=args.seeds, wandb_mode=args.wandb)
    print(f"comparison: {out_dir / (compare.EXPERIMENT + '.md')}")
    for line in compare.verdicts(out_dir):
        print(f"  {line}")
    return 1 if result.failed else 0


def run_report(args: argparse.Namespace) -> int:
    _build_report(args)
    return 0


def _check_writable(results_dir: str) -> None:
    """Before any work: a results folder that cannot be written is named as the option it came from."""
    import tempfile

    try:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=results_dir):
            pass
    except OSError as error:
        raise UserError(f"--results-dir {results_dir} is not writable ({error.strerror or error})") from None


EXIT_FOR_STATUS = {"finished": 0, "failed": 1, "diverged": 3}


TORCHRUN_EPILOG = """\
data-parallel (one run over several GPUs or nodes; rank 0 writes the records, the run id is unchanged):
  torchrun --nproc-per-node 8 -m bench train resnet50 --dataset imagenet --data-dir D
  a re-run of the same command resumes from the last checkpoint
"""


def run_train(args: argparse.Namespace) -> int:
    world = distributed.World.from_environment()
    execution = train.Execution(
        device=train.resolve_device(args.device), precision=args.precision,
        channels_last=not args.no_channels_last, compile=args.compile, sync_bn=args.sync_bn,
    )
    try:
        outcome = train.run(
            args.spec, dataset=args.dataset, data_dir=args.data_dir, recipe=args.recipe, scale=args.scale,
            seed=args.seed, results_dir=args.results_dir, wandb_mode=args.wandb, execution=execution,
            force=args.force, download=not args.no_download, val_size=args.val_split, normalize=args.normalize,
            checkpoint_every=args.checkpoint_every, skip_corrupt=args.skip_corrupt, cache_dir=args.cache_dir,
            placement=args.data_placement,
        )
    except (KeyboardInterrupt, distributed.Stopped):
        if world.main:  # rank 0 speaks for the run
            print("\ninterrupted: the run resumes from its last checkpoint when the same command is run again",
                  file=sys.stderr)
        return 130
    except distributed.RankLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:
        if world.main or not distributed.lost_peer(error):
            raise
        print(f"rank {world.rank}: stopped, another rank is gone (rank 0 records which)", file=sys.stderr)
        return 1
    return EXIT_FOR_STATUS[outcome.status]


def run_perf(args: argparse.Namespace) -> int:
    device = train.resolve_device(args.device)
    cuda = device.type == "cuda"
    declared = data.info(args.dataset)
    cifar = declared.reader == "cifar"

    def default(value, cifar_cpu, cifar_cuda, other_cpu, other_cuda):
        if value is not None:
            return value
        return (cifar_cuda if cuda else cifar_cpu) if cifar else (other_cuda if cuda else other_cpu)

    settings = perf.Settings(
        specs=args.specs, dataset=args.dataset, data_dir=args.data_dir, device=device,
        iters=default(args.iters, 30, 200, 10, 100), warmup=default(args.warmup, 3, 20, 2, 20),
        repeats=args.repeats, batch_size=default(args.batch_size, 128, 128, 64, 256),
        workers=args.workers if args.workers is not None else standard.default_workers(),
        depths=tuple(default(args.depths, perf.DEPTHS, perf.DEPTHS, (), ())),
        batch_sizes=tuple(default(args.batch_sizes, perf.BATCH_SIZES, perf.BATCH_SIZES, (), ())),
        wandb=cifar and not args.no_wandb,
        scaling_steps=args.scaling_steps if args.scaling_steps is not None else (50 if cuda else 10),
        scaling_repeats=args.scaling_repeats, cache_dir=args.cache_dir,
        out=Path(args.out or f"results/perf/{device.type}" + ("" if args.dataset == "cifar10" else f"-{declared.name}")),
        command=perf.command_line(args.argv),
    )
    report = perf.run(settings)
    print("\n" + report.read_text())
    print(f"written: {report}, {report.with_name('perf.csv')}" +
          (f", {report.with_name('scaling.png')}" if settings.depths or settings.batch_sizes else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    if not given:  # `python -m bench` alone: what there is to do, a line each
        parser.print_help()
        return 2
    args = parser.parse_args(given)
    args.argv = given
    try:
        if getattr(args, "results_dir", None) is not None:
            _check_writable(args.results_dir)
        return args.run(args)
    except (variants.SpecError, UserError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an unwritable results folder, a full disk: the environment, not the code
        print(f"error: {error}", file=sys.stderr)
        return 2
