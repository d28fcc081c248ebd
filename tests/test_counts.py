"""Parameter and multiply-add counts against the paper's tables (Table 1, Table 6, Fig. 5) and torchvision."""

import pytest
from torch import nn

import variants
from bench import cost
from variants.layers import BasicBlock, BlockConfig, Bottleneck


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    "depth, params",
    [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018), (110, 1_727_962), (1202, 19_421_274)],
)
def test_cifar_parameter_counts_are_exact_and_plain_twins_match(depth, params):
    assert n_params(variants.create(f"resnet{depth}", num_classes=10)) == params
    assert n_params(variants.create(f"resnet{depth}(shortcut=none)", num_classes=10)) == params


@pytest.mark.parametrize("depth, paper_gflops", [(18, 1.8), (34, 3.6), (50, 3.8), (101, 7.6), (152, 11.3)])
def test_imagenet_macs_within_3_percent_of_table_1(depth, paper_gflops):
    measured = cost.measure(f"resnet{depth}", image_size=224)
    assert measured.macs == pytest.approx(paper_gflops * 1e9, rel=0.03)
    assert sum(stage.params for stage in measured.stages) == measured.params


@pytest.mark.parametrize("depth, paper_mmacs", [(20, 40.8), (32, 69.1), (44, 97.4), (56, 125.8), (110, 253.0)])
def test_cifar_macs_match_published_counts(depth, paper_mmacs):
    assert cost.measure(f"resnet{depth}").macs == pytest.approx(paper_mmacs * 1e6, rel=0.03)


@pytest.mark.parametrize(
    "spec, torchvision_params",
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50b", 25_557_032),
     ("resnet101b", 44_549_160), ("resnet152b", 60_192_808)],
)
def test_imagenet_parameter_counts_equal_torchvision(spec, torchvision_params):
    assert n_params(variants.create(spec)) == torchvision_params


def test_stride_placement_changes_macs_not_params():
    original, tweaked = cost.measure("resnet50"), cost.measure("resnet50b")
    assert original.params == tweaked.params
    assert tweaked.macs / original.macs == pytest.approx(4.1 / 3.8, rel=0.02)  # Bag of Tricks Table 5


def test_bottleneck_cost_of_figure_5():
    basic_on_64 = BasicBlock(BlockConfig(64, 64, shortcut="B"))
    bottleneck_on_256 = Bottleneck(BlockConfig(256, 64, shortcut="B", stride_in="1x1"))
    assert conv_weights(basic_on_64) == 73_728
    assert conv_weights(bottleneck_on_256) == 69_632
    # "replacing the identity shortcut with projection ... the time complexity and model size are doubled"
    projected = conv_weights(Bottleneck(BlockConfig(256, 64, shortcut="C", stride_in="1x1")))
    assert projected == 69_632 + 256 * 256
    assert projected / conv_weights(bottleneck_on_256) == pytest.approx(2.0, rel=0.1)


def test_measure_defaults_follow_the_family():
    cifar, imagenet = cost.measure("resnet20"), cost.measure("resnet18")
    assert (cifar.image_size, cifar.num_classes) == (32, 10)
    assert (imagenet.image_size, imagenet.num_classes) == (224, 1000)
    assert cifar.not_counted.get("aten::add") == 9  # the residual adds fvcore has no handler for
