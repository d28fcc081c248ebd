"""The architecture's promises: one resolved run that the records describe as trained, block kinds as data,
one registry per option, and every command's options explained."""

import argparse
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import variants
from bench import train
from bench.cli import build_parser, main
from bench.commands import commands
from bench.runs import Request
from test_dashboard import logged
from test_folder import write_folder
from variants import layers

ROOT = Path(__file__).resolve().parents[1]
TINY_NET = "imagenet(blocks=1-1-1-1)"


# ---- the records describe the net as trained ------------------------------------------------------------------

class StoppedBeforeTraining:
    """In place of train.Trainer: everything before the first step has happened (config.json written, W&B
    started with its config), then the run is interrupted."""

    def __init__(self, *args, **kwargs):
        pass

    def fit(self):
        raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("recipe, zero_init", [("bot", True), ("imagenet", False)])
def test_the_records_and_wandb_describe_the_net_as_trained(tmp_path, monkeypatch, recipe, zero_init):
    import wandb

    # 260 training images: one batch of the recipes' 256
    root = write_folder(tmp_path / "folder", train_counts={"n01a": 130, "n02b": 130}, val_counts={"n01a": 2, "n02b": 2})
    monkeypatch.setattr(train, "Trainer", StoppedBeforeTraining)
    results = tmp_path / "results"
    assert main(["train", TINY_NET, "--dataset", f"folder:{root}", "--recipe", recipe, "--scale", "0.05",
                 "--results-dir", str(results), "--wandb", "offline", "--device", "cpu"]) == 130
    wandb.teardown()  # the service writes the run file out
    (record,) = (results / "runs").iterdir()
    config = train.records.read_json(record / "config.json")
    assert config["variant"]["zero_init"] is zero_init
    assert config["spec"] == "imagenet(blocks=1-1-1-1,block=basic)"  # the run's name: the spec as asked
    assert config["spec_as_trained"] == "imagenet(blocks=1-1-1-1,block=basic" + (",zero_init=true)" if zero_init else ")")
    (run_file,) = results.glob("wandb/offline-run-*/run-*.wandb")
    assert logged(run_file)["config"]["variant_zero_init"] is zero_init
    # the run id is the request's, whatever the recipe does to the net
    assert record.name == Request(TINY_NET, f"folder:{root}", recipe, 0.05).resolve().run_id


def test_a_run_as_trained_keeps_the_id_of_the_run_as_asked():
    asked = Request("resnet50", "imagenette", "bot").resolve()
    assert asked.trained == variants.parse("resnet50(zero_init=true)")
    assert asked.spec == variants.parse("resnet50") and asked.canonical == "resnet50"
    assert asked.run_id == "resnet50_imagenette_bot-x1_seed0_" + asked.run_id.rsplit("_", 1)[1]
    assert Request("resnet50", "imagenette", "imagenet").resolve().trained == variants.parse("resnet50")


# ---- block kinds as data -------------------------------------------------------------------------------------------

class ToyBlock(nn.Module):
    """One 3x3 conv and BN, doubling the stage's width: a block kind no module outside this test knows."""

    expansion = 2

    def __init__(self, config: layers.BlockConfig):
        super().__init__()
        out = config.width * self.expansion
        self.conv = layers.conv3x3(config.in_channels, out, config.stride)
        self.bn = nn.BatchNorm2d(out)
        self.shortcut = layers.builder(layers.SHORTCUTS, "shortcut", config.shortcut)(config.in_channels, out,
                                                                                     config.stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn.weight)

    def forward(self, x):
        out = self.bn(self.conv(x))
        return torch.relu(out + self.shortcut(x) if self.shortcut is not None else out)


def test_a_block_kind_is_one_registry_entry(monkeypatch):
    from bench.cost import measure

    monkeypatch.setitem(layers.BLOCKS, "toy", layers.BlockKind(ToyBlock, "one 3x3 conv, 2x expansion", convs=1,
                                                               families=("cifar",)))
    spec = variants.parse("cifar(depth=11,block=toy,shortcut=B)")  # depth = 3 stages x 1 conv x n + 2
    assert spec.layers == (3, 3, 3) and spec.depth == 11 and spec.expansion == 2 and spec.stride_in is None
    assert variants.canonical(spec) == "cifar(depth=11,block=toy,shortcut=B)"
    assert variants.parse(variants.canonical(spec)) == spec
    assert "toy blocks 3-3-3" in variants.describe(spec)
    with pytest.raises(variants.SpecError, match="depth=12 is not a CIFAR ResNet depth: it must be 3n\\+2"):
        variants.parse("cifar(depth=12,block=toy)")
    with pytest.raises(variants.SpecError, match="block=toy is not allowed for the imagenet family"):
        variants.parse("imagenet(blocks=1-1-1-1,block=toy)")

    model = variants.create(spec, num_classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert [model.layer1[0].conv.out_channels, model.layer2[0].conv.out_channels, model.fc.in_features] == [32, 64, 128]
    # counted by hand: the stem conv+BN, per stage the first block (conv, BN, projection conv+BN) and two more
    # blocks (conv, BN), then the fc
    stem = 3 * 9 * 16 + 2 * 16
    stages = 0
    for width, inputs in ((16, 16), (32, 32), (64, 64)):
        out = 2 * width
        first = inputs * 9 * out + 2 * out + inputs * out + 2 * out
        stages += first + 2 * (out * 9 * out + 2 * out)
    assert measure(spec, num_classes=10).params == stem + stages + 128 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == stem + stages + 128 * 10 + 10
    assert model.final_norm is None

    # a kind whose blocks end before their norm (as pre-activation ones do): the net adds BN + ReLU at the end
    monkeypatch.setitem(layers.BLOCKS, "toy_open", layers.BlockKind(ToyBlock, "the toy block, the net's last norm "
                                                                   "its own", convs=1, families=("cifar",),
                                                                   final_norm=True))
    open_net = variants.create("cifar(depth=11,block=toy_open,shortcut=B)", num_classes=10)
    assert [type(m) for m in open_net.final_norm] == [nn.BatchNorm2d, nn.ReLU]
    assert open_net.final_norm[0].num_features == 128
    assert sum(p.numel() for p in open_net.parameters()) == stem + stages + 2 * 128 + 128 * 10 + 10
    with torch.no_grad():
        features = open_net.forward_features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 128, 8, 8) and features.min() >= 0  # after the final ReLU


def test_no_block_name_decides_behaviour_outside_its_registry_entry():
    """What `git grep -n '"bottleneck"'` finds in the code: the registry entry, the presets' Table 1, and a
    published table's row; nothing that decides what is built, counted or named."""
    allowed = {
        "variants/layers.py": "the block registry's entry",
        "variants/presets.py": "Table 1's block kinds per depth, the presets' table",
        "bench/report/pages.py": "a row of the published Figure 5 table (bench/reference/fig5_block_cost.csv)",
        "bench/report/kinds.py": "the report kind named bottleneck (Table 1, Figure 5), not a block",
    }
    found = {}
    for path in sorted((ROOT / "variants").glob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""["']bottleneck["']""", line):
                found.setdefault(str(path.relative_to(ROOT)), []).append(number)
    assert set(found) == set(allowed), found
    assert [len(found[path]) for path in ("variants/layers.py", "bench/report/pages.py", "bench/report/kinds.py")] == \
        [1, 1, 1]


# ---- one registry per option, every option explained -----------------------------------------------------------

def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_option_of_every_command_has_help():
    parsers = subcommand_parsers()
    assert list(parsers) == [command.name for command in commands()]
    for name, parser in parsers.items():
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings or action.dest)


def test_the_values_an_option_allows_come_from_their_registry():
    from bench import launch, tracking
    from bench.data.loader import PLACEMENTS
    from bench.recipe import RECIPES

    def choices(command: str, flag: str):
        (action,) = [a for a in subcommand_parsers()[command]._actions if flag in a.option_strings]
        return tuple(action.choices)

    for command in ("train", "suite", "compare", "report"):
        assert choices(command, "--wandb") == tracking.MODES
        assert choices(command, "--recipe") == tuple(RECIPES)
    assert choices("train", "--precision") == train.Execution.PRECISIONS
    assert choices("train", "--compile") == choices("suite", "--compile") == train.Execution.COMPILE_MODES
    assert choices("train", "--data-placement") == PLACEMENTS
    assert choices("suite", "--backend") == tuple(launch.LAUNCHERS) == ("local", "ray")


def test_a_suite_passes_its_options_to_the_training_child_through_the_same_declarations(tmp_path):
    from bench.commands.common import train_arguments

    args = build_parser().parse_args(["suite", "cifar10", "--recipe", "smoke", "--scale", "0.5", "--data-dir", "d",
                                      "--results-dir", str(tmp_path), "--precision", "fp32", "--wandb", "disabled",
                                      "--checkpoint-every", "10", "--skip-corrupt"])
    run = Request("resnet20(shortcut=B)", "cifar10", "smoke", 0.5, 2, checkpoint_every=10).resolve()
    argv = train_arguments(run, args, "cpu")
    child = build_parser().parse_args(["train", *argv])
    from bench.commands.common import request

    assert request(child.spec, child).resolve() == run  # the same run, id included
    assert (child.data_dir, child.results_dir) == (str(Path("d").resolve()), str(tmp_path.resolve()))
    assert (child.precision, child.wandb, child.skip_corrupt, child.device) == ("fp32", "disabled", True, "cpu")
    assert child.device_share == 1.0 and not child.deterministic  # a slot with the whole device: no flag
    args = build_parser().parse_args(["suite", "cifar10", "--deterministic"])
    child = build_parser().parse_args(["train", *train_arguments(run, args, "cuda:0", 0.5)])
    assert (child.device, child.device_share, child.deterministic) == ("cuda:0", 0.5, True)
