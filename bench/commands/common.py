"""The options several commands share, each declared once (options.Option), with the values they allow taken
from the constants that define them (recipe.RECIPES, tracking.MODES, execution.Execution's modes, ...).

`request()` reads a run's request from parsed options, and `train_arguments()` writes a run back as the
arguments of `bench train`: the suite passes each training child its run and the options it shares with
`bench train` (`PASSED_ON`) through these same declarations.
"""

from __future__ import annotations

import argparse

import variants

from .. import data as datasets
from .. import recipe as recipes
from .. import runs, tracking
from ..data.loader import PLACEMENTS
from ..options import Group, Option
from ..execution import Execution, resolve_device

SPEC_EPILOG = """\
spec strings: NAME or NAME(key=value,...), e.g. resnet56, resnet34(shortcut=A),
resnet50(stem=deep,shortcut=D), resnet50b(se=true), cifar(depth=38), timm/resnet50d.
keys:
  depth: cifar 6n+2 (20, 32, ..., 1202); imagenet 18, 34, 50, 101, 152
  blocks: blocks per stage, a-b-c (cifar) or a-b-c-d (imagenet)
""" + "".join(f"  {axis.name}{'=true|false' if axis.flag else ''}: {axis.meaning}\n"
             for axis in variants.Spec.chosen_axes() if axis.key)

DATASET_HELP = (f"one of: {datasets.names()} (default: cifar10). folder:PATH is any folder holding "
                "train/<class>/<images> and val/<class>/<images>")
DATA_DIR_HELP = ("folder holding the dataset: cifar-10-batches-py/ or cifar-100-python/ for CIFAR; for imagenette and "
                 "imagewoof, a release folder (imagenette2-160/, -320/ or imagenette2/) or the release itself; for "
                 "imagenet, train/ and val/ class folders. CIFAR, Imagenette and Imagewoof are downloaded there if "
                 "missing (default: ./data)")
RECIPE_HELP = ("paper: the CIFAR recipe of §4.2 (64k iterations); identity: Identity Mappings' CIFAR recipe (the same, "
               "but every net warms up at lr 0.01 for 400 iterations); imagenet: §3.4 (120 epochs at 224 px; on "
               "Imagenette 20 epochs at 128 px); bot: Bag of Tricks' training (warm-up, cosine, label smoothing, no BN "
               "decay, zero-gamma; same budgets); smoke: a few iterations for tests (default: the suite's, else the "
               "dataset's: paper for CIFAR, bot for Imagenette/Imagewoof/folders, imagenet for ImageNet)")

# ---- what a run computes (and how often it is saved) ---------------------------------------------------------
DATASET = Option("--dataset", default="cifar10", metavar="NAME", help=DATASET_HELP)
RECIPE = Option("--recipe", choices=tuple(recipes.RECIPES), help=RECIPE_HELP)
SCALE = Option("--scale", type=float, default=1.0, metavar="F",
               help="multiply every length of the recipe (iterations or epochs) by F; 0.05 is a quick look "
                    "(default: 1)")
SEED = Option("--seed", type=int, default=0, metavar="N",
              help="seed of the initialisation, the data order and the augmentation (default: 0)")
VAL_SPLIT = Option("--val-split", dest="val_size", type=int, metavar="N",
                   help="hold out N training images for validation (the paper used 5000; default: none)")
NORMALIZE = Option("--normalize", choices=datasets.Normalizer.MODES,
                   help="pixel: the paper's per-pixel mean subtraction (CIFAR's default); channel: per-channel "
                        "mean/std (the default at ImageNet resolution)")
CHECKPOINT_EVERY = Option("--checkpoint-every", type=int, metavar="N",
                          help="iterations between checkpoints (default: the recipe's, 2000 x scale for paper); a "
                               "multiple of the recipe's log interval; not part of the run id")
RUN = Group((DATASET, RECIPE, SCALE, SEED, VAL_SPLIT, NORMALIZE, CHECKPOINT_EVERY), "the run",
            "what it computes: spec, dataset, recipe, scale, seed, a validation split and the normalisation make "
            "its run id; the checkpoint interval does not")

# ---- where the data is read and the records written ----------------------------------------------------------
DATA_DIR = Option("--data-dir", default="data", metavar="DIR", path=True, help=DATA_DIR_HELP)
NO_DOWNLOAD = Option("--no-download", switch=True, help="fail instead of downloading missing data")
CACHE_DIR = Option("--cache-dir", metavar="DIR", path=True,
                   help="ImageNet-style datasets: where the decoded uint8 cache is written (default: "
                        "DATA/.resnet-bench-cache, or ~/.cache/resnet-bench when the data folder is read-only)")
SKIP_CORRUPT = Option("--skip-corrupt", switch=True,
                      help="ImageNet-style datasets: leave out images that do not decode (listed in the run's "
                           "config.json) instead of stopping at the first")
RESULTS_DIR = Option("--results-dir", default="results", metavar="DIR", path=True,
                     help="where the records (runs/) and reports (reports/) are (default: results)")
WANDB = Option("--wandb", choices=tracking.MODES,
               help="W&B mode (default: online when an API key is configured, else offline)")
DATA = Group((DATA_DIR, NO_DOWNLOAD, CACHE_DIR, SKIP_CORRUPT), "data")
RECORDS = Group((RESULTS_DIR, WANDB), "records")

# ---- how it executes (recorded in config.json, never part of the run id) ----------------------------------------
DEVICE = Option("--device", default="auto", metavar="auto|cpu|cuda|cuda:I",
                help="auto (CUDA when present), cpu, cuda or cuda:I (default: auto)")
PRECISION = Option("--precision", default="auto", choices=Execution.PRECISIONS,
                   help="bf16 autocast, plain fp32, or auto (default): bf16 on GPUs that support it and CPUs with AMX, "
                        "fp32 elsewhere")
NO_CHANNELS_LAST = Option("--no-channels-last", switch=True, help="keep NCHW tensors (default: channels_last)")
COMPILE = Option("--compile", default="auto", choices=Execution.COMPILE_MODES,
                 help="torch.compile mode, or auto (default): reduce-overhead (CUDA graphs) on CUDA, off on the CPU "
                      "and under torchrun")
SYNC_BN = Option("--sync-bn", switch=True,
                 help="under torchrun on GPUs: batch norm over the whole global batch (SyncBatchNorm), not over each "
                      "rank's share")
DATA_PLACEMENT = Option("--data-placement", default="auto", choices=PLACEMENTS,
                        help="auto (default): the training split whole on the device when it takes at most half of "
                             "the run's share of it (--device-share), or of its free memory if less, else streamed in "
                             "windows from the cache; the batches are the same either way")
DETERMINISTIC = Option("--deterministic", switch=True,
                       help="on a GPU: cudnn's deterministic kernels and no benchmark search, so that a resumed run, "
                            "stream against resident and a retried Ray task give the same bits (slower; the CPU is "
                            "deterministic without it)")
ARRAY_MODE = Option("--array-mode", default="auto", choices=Execution.ARRAY_MODES,
                    help="how a run array trains its seeds: fused (one net with a seed dimension, HFTA: K small "
                         "nets as one GPU workload; the runs alone's numbers to fp32's noise), in-turn (each seed's own net, one after "
                         "another in each step: the runs alone's numbers to the last bit), or auto (default): fused "
                         "on CUDA, in-turn on the CPU, where fusing measured slower")
DEVICE_SHARE = Option("--device-share", type=float, default=1.0, metavar="F",
                      help="the share of the device this run is given, as a suite sets it for --jobs on one GPU or "
                           "Ray's --gpus-per-run: the training split stays on the device only when it takes at most "
                           "half of that share (default: 1, the whole device)")
FORCE = Option("--force", switch=True, help="discard an existing record of this run and train again")
EXECUTION = Group((DEVICE, PRECISION, NO_CHANNELS_LAST, COMPILE, SYNC_BN, DATA_PLACEMENT, DETERMINISTIC, ARRAY_MODE,
                   DEVICE_SHARE, FORCE), "execution", "how the run executes: recorded in config.json, not part of the run id")

# What a suite (or a comparison) passes on to every training child, when the command has the option; the
# device and its share are each job slot's own.
PASSED_ON = Group((DATA_DIR, CACHE_DIR, SKIP_CORRUPT, RESULTS_DIR, WANDB, PRECISION, COMPILE, DETERMINISTIC,
                   ARRAY_MODE))


def request(spec: str, args: argparse.Namespace) -> runs.Request:
    """The request that parsed `bench train` options make (the RUN group's names are the Request's fields)."""
    return runs.Request(spec, **RUN.values(args))


def train_arguments(run: runs.Run, args: argparse.Namespace, device: str, share: float = 1.0) -> list[str]:
    """The arguments of `bench train` that train `run` on `device` (given `share` of it), with the options of
    `args` that it shares."""
    given = run.request
    if isinstance(given.recipe, recipes.Recipe):  # a recipe object from code has no name on the command line
        raise ValueError(f"recipe {given.recipe.name!r} is not a registered recipe; a child process cannot be given it")
    values = {option.name: getattr(given, option.name) for option in RUN.options}
    return [run.canonical, *RUN.argv(values), *PASSED_ON.argv(PASSED_ON.values(args)), *DEVICE.argv(device),
            *(DEVICE_SHARE.argv(share) if share < 1 else [])]


def source(args: argparse.Namespace) -> datasets.Source:
    """Where the parsed options say the data is."""
    return datasets.Source(args.data_dir, getattr(args, "cache_dir", None), not getattr(args, "no_download", False),
                           getattr(args, "skip_corrupt", False))


def execution(args: argparse.Namespace) -> Execution:
    """How the parsed options say a run executes (the EXECUTION group; --device checked against this machine)."""
    return Execution(device=resolve_device(args.device), precision=args.precision,
                     channels_last=not args.no_channels_last, compile=args.compile, sync_bn=args.sync_bn,
                     placement=args.data_placement, deterministic=args.deterministic, device_share=args.device_share,
                     array_mode=getattr(args, "array_mode", "auto"))
