"""The follow-up papers' design space as axes of the same Spec: Identity Mappings' units and shortcut designs,
ResNeXt's groups and base widths, Wide ResNets' widening and dropout, checked against every reference there is.

Oracles: torchvision's resnext50_32x4d / wide_resnet50_2 and timm's resnetv2 nets (weights copied, same
outputs), the papers' parameter counts (`../shared/reference/resnet-figures.md`), and each unit's and
shortcut's formula written out by hand on one block.
"""

import re

import pytest
import timm
import torch
import torchvision
from torch import nn

import variants
from bench import cost
from test_counts import n_params
from test_equivalence import outputs_of_both, randomize_batchnorm
from variants import layers
from variants.layers import BasicBlock, BlockConfig, Bottleneck


# ---- oracles with copied weights -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("reference_name, ours, params, gmacs", [
    ("resnext50_32x4d", "resnext50_32x4d", 25_028_904, 4.23),
    ("wide_resnet50_2", "wide_resnet50_2", 68_883_240, 11.40),
])
def test_torchvision_resnext_and_wide_resnet(reference_name, ours, params, gmacs):
    reference = getattr(torchvision.models, reference_name)(weights=None)
    expected, actual = outputs_of_both(reference, ours)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    measured = cost.measure(ours, image_size=224)
    assert measured.params == n_params(reference) == params
    # torchvision's published GFLOPS count the convs and the fc; fvcore's total adds BN's (0.2-0.7% more)
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(variants.create(ours).eval(), torch.zeros(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False)
    by_operator = analysis.by_operator()
    assert round((by_operator["conv"] + by_operator["linear"]) / 1e9, 2) == gmacs
    assert measured.macs == analysis.total() and measured.macs / 1e9 == pytest.approx(gmacs, rel=0.01)


def timm_in_our_order(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """timm's resnetv2 registers a block's projection first, ours (as torchvision) last: move it."""
    blocks: dict[str, list] = {}
    for key, value in model.state_dict().items():
        match = re.match(r"^(stages\.\d+\.blocks\.\d+\.)", key)
        blocks.setdefault(match.group(1) if match else key, []).append((key, value))
    return [item for entries in blocks.values()
            for item in sorted(entries, key=lambda entry: ".downsample." in entry[0])]


@pytest.mark.parametrize("timm_name, ours, params", [
    ("resnetv2_18", "resnet18(unit=preact)", 11_687_720),
    pytest.param("resnetv2_50", "resnet50b(unit=preact)", 25_549_352, marks=pytest.mark.slow),
    # deep stem and avg-pool shortcut too: a pre-activation ResNet-D is one spec string
    pytest.param("resnetv2_50d", "resnet50d(unit=preact)", 25_568_584, marks=pytest.mark.slow),
])
def test_timm_resnetv2_is_our_pre_activation_unit(timm_name, ours, params):
    reference = timm.create_model(timm_name, pretrained=False)
    randomize_batchnorm(reference)
    net = variants.create(ours)
    source, target = timm_in_our_order(reference), list(net.state_dict().items())
    assert len(source) == len(target)
    state = {}
    for (source_key, value), (target_key, slot) in zip(source, target):
        # timm's classifier is a 1x1 conv: the same numbers as our fc's matrix
        assert value.shape == slot.shape or source_key == "head.fc.weight", f"{source_key} -> {target_key}"
        state[target_key] = value.reshape(slot.shape)
    net.load_state_dict(state)
    batch = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = reference.eval()(batch), net.eval()(batch)
    # no BN on the trunk of a pre-activation net: logits grow to ~1e2, so float32 noise is relative to them
    torch.testing.assert_close(actual, expected, atol=1e-6 * expected.abs().max().item(), rtol=0)
    assert n_params(net) == n_params(reference) == params


# ---- the papers' counts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, params", [
    ("wrn28_10", 36_479_194), ("wrn16_8", 10_961_370),  # Wide ResNets: 36.5M, 11.0M
    ("resnet164(unit=preact)", 1_703_258), ("resnet1001(unit=preact)", 10_327_706),  # Identity Mappings: 1.7M, 10.2M
    ("wrn40_4", 8_949_210),  # WRN-40-4: the paper's 8.9M
])
def test_cifar_counts_from_the_papers_architecture(spec, params):
    assert n_params(variants.create(spec, num_classes=10)) == params


@pytest.mark.parametrize("spec, params", [
    ("resnext50_32x4d", 25_028_904), ("resnext101_32x8d", 88_791_336),
    ("wide_resnet50_2", 68_883_240), ("wide_resnet101_2", 126_886_696),
])
def test_imagenet_presets_equal_torchvision(spec, params):
    assert n_params(variants.create(spec)) == params


@pytest.mark.slow
def test_resnext_table_3_settings_cost_the_same_within_a_few_percent():
    """ResNeXt Table 3 holds complexity at ResNet-50's while trading width for cardinality."""
    settings = ["resnet50b", "resnet50b(groups=2,base_width=40)", "resnet50b(groups=4,base_width=24)",
                "resnet50b(groups=8,base_width=14)", "resnext50_32x4d"]
    macs = [cost.measure(spec, image_size=224).macs for spec in settings]
    assert max(macs) / min(macs) < 1.06, macs


# ---- units and shortcuts, each against its formula -----------------------------------------------------------

def block_and_input(unit: str, shortcut: str = "A", channels: int = 8, **config):
    torch.manual_seed(0)
    block = BasicBlock(BlockConfig(channels, channels, shortcut=shortcut, unit=unit, **config))
    randomize_batchnorm(block)
    return block.eval(), torch.randn(2, channels, 6, 6)


@pytest.mark.parametrize("unit, formula", [
    ("original", lambda b, x: torch.relu(b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x))))) + x)),
    ("bn_after_add", lambda b, x: torch.relu(b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x)))) + x))),
    ("relu_before_add", lambda b, x: torch.relu(b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(x)))))) + x),
    ("relu_preact", lambda b, x: b.bn2(b.conv2(torch.relu(b.bn1(b.conv1(torch.relu(x)))))) + x),
    ("preact", lambda b, x: b.conv2(torch.relu(b.bn2(b.conv1(torch.relu(b.bn1(x)))))) + x),
])
def test_each_unit_is_the_figure_4_arrangement(unit, formula):
    block, x = block_and_input(unit)
    with torch.no_grad():
        torch.testing.assert_close(block(x.clone()), formula(block, x), rtol=0, atol=1e-6)


def test_a_pre_activation_projection_takes_the_pre_activated_input_and_has_no_bn():
    block = BasicBlock(BlockConfig(8, 16, stride=2, shortcut="B", unit="preact")).eval()
    randomize_batchnorm(block)
    assert [type(m) for m in block.shortcut] == [nn.Conv2d]
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        pre = torch.relu(block.bn1(x))
        expected = block.conv2(torch.relu(block.bn2(block.conv1(pre)))) + block.shortcut(pre)
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-6)


def test_identity_mappings_table_1_shortcuts():
    with torch.no_grad():
        scaled, x = block_and_input("original", "scaled")
        residual = scaled.bn2(scaled.conv2(torch.relu(scaled.bn1(scaled.conv1(x)))))
        torch.testing.assert_close(scaled(x), torch.relu(0.5 * x + 0.5 * residual))
        # gates shut (b_g very negative): exclusive gating passes the identity alone, shortcut-only adds both
        closed, _ = block_and_input("original", "exclusive_gate", gate_bias=-100.0)
        torch.testing.assert_close(closed(x), torch.relu(x))
        additive, _ = block_and_input("original", "shortcut_gate", gate_bias=-100.0)
        residual = additive.bn2(additive.conv2(torch.relu(additive.bn1(additive.conv1(x)))))
        torch.testing.assert_close(additive(x), torch.relu(residual + x))
        # open (b_g very positive): exclusive gating is the plain net's unit
        opened, _ = block_and_input("original", "exclusive_gate", gate_bias=100.0)
        residual = opened.bn2(opened.conv2(torch.relu(opened.bn1(opened.conv1(x)))))
        torch.testing.assert_close(opened(x), torch.relu(residual))
        dropped, _ = block_and_input("original", "dropout")
        residual = dropped.bn2(dropped.conv2(torch.relu(dropped.bn1(dropped.conv1(x)))))
        torch.testing.assert_close(dropped(x), torch.relu(residual + x))  # evaluation: dropout is the identity
    gated = variants.create("resnet110(shortcut=exclusive_gate,gate_bias=-6)", num_classes=10)
    gates = [m.gate for m in gated.modules() if isinstance(m, layers.GatedShortcut)]
    assert len(gates) == 54 and all(g.bias.eq(-6).all() for g in gates)
    dropped.train()
    outputs = dropped(x)
    assert not torch.equal(outputs, dropped(x))  # a new draw each time in training


def test_grouped_bottleneck_follows_torchvisions_width_rule():
    block = Bottleneck(BlockConfig(256, 64, shortcut="B", stride_in="3x3", groups=32, base_width=4))
    assert (block.conv1.out_channels, block.conv2.groups, block.conv3.out_channels) == (128, 32, 256)
    assert block.conv2.stride == (1, 1)
    strided = Bottleneck(BlockConfig(256, 128, stride=2, shortcut="B", stride_in="3x3", groups=32, base_width=4))
    assert strided.conv2.stride == (2, 2) and strided.conv1.stride == (1, 1)


def test_wide_resnet_dropout_sits_between_the_convs():
    net = variants.create("wrn16_8(dropout=0.3)", num_classes=10)
    block = net.layer1[0]
    assert block.dropout.p == 0.3 and block.conv1.out_channels == 128 and net.fc.in_features == 512
    assert [name for name, _ in block.named_children()][:5] == ["bn1", "conv1", "bn2", "conv2", "dropout"]
    order = []
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: order.append(name))
             for name, module in block.named_children() if name in ("conv1", "conv2", "dropout")]
    block(torch.randn(2, 16, 8, 8))
    for hook in hooks:
        hook.remove()
    assert order == ["conv1", "dropout", "conv2"]


def test_zero_init_starts_every_unit_as_its_shortcut():
    for spec in ("resnet164(unit=preact,zero_init=true)", "resnet56(unit=relu_preact,zero_init=true)"):
        net = variants.create(spec, num_classes=10).eval()
        x = torch.randn(1, 16, 32, 32)
        block = net.layer1[1]
        with torch.no_grad():
            assert torch.equal(block(x.repeat(1, block.conv1.in_channels // 16, 1, 1)),
                               x.repeat(1, block.conv1.in_channels // 16, 1, 1))


# ---- every new value builds, trains a step, on both families -------------------------------------------------

NEW_VALUES = [f"unit={unit}" for unit in layers.UNITS if unit != "original"] + [
    "shortcut=scaled", "shortcut=exclusive_gate,gate_bias=-6", "shortcut=shortcut_gate,gate_bias=-6",
    "shortcut=dropout", "dropout=0.3",
]


@pytest.mark.parametrize("options", NEW_VALUES + ["groups=4,base_width=16", "widen=2"])
def test_cifar_forward_backward(options):
    net = variants.create(f"cifar(depth=11,block=bottleneck,shortcut=B,{options})" if "groups" in options
                          else f"resnet20({options})", num_classes=10)
    out = net(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10) and all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("options", NEW_VALUES + ["groups=8,base_width=8", "base_width=128"])
def test_imagenet_forward_backward(options):
    net = variants.create(f"imagenet(blocks=1-1-1-1,block=bottleneck,{options})", num_classes=7)
    out = net(torch.randn(1, 3, 224, 224))
    out.sum().backward()
    assert out.shape == (1, 7) and all(p.grad is not None for p in net.parameters())


# ---- names -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("written, canonical", [
    ("resnet50b(groups=32,base_width=4)", "resnext50_32x4d"),
    ("resnet50b(base_width=128)", "wide_resnet50_2"),
    ("resnet50(stride_in=3x3,stem=deep,shortcut=D,unit=preact,groups=32,base_width=4)",
     "resnet50d(unit=preact,groups=32,base_width=4)"),  # ties go to the earlier preset
    ("cifar(depth=26,widen=10,unit=preact,shortcut=B)", "wrn28_10"),
    ("cifar(depth=164,block=bottleneck,shortcut=B,stride_in=3x3)", "resnet164"),
    ("resnet110(shortcut=exclusive_gate,gate_bias=-6.0)", "resnet110(shortcut=exclusive_gate,gate_bias=-6)"),
    ("cifar(depth=38)", "cifar(depth=38)"),  # same blocks as wrn40_4, but the family's defaults are nearer
    ("cifar(depth=14)", "cifar(depth=14)"),
])
def test_canonical_names_of_the_new_axes_round_trip(written, canonical):
    assert variants.canonical(written) == canonical
    assert variants.parse(canonical) == variants.parse(written)


def test_every_preset_name_is_its_own_canonical_string():
    assert [name for name in variants.PRESETS if variants.canonical(name) != name] == []


@pytest.mark.parametrize("text, message", [
    ("resnet20(unit=post)", "unit=post is not allowed; choose one of: original, bn_after_add, relu_before_add, "
                            "relu_preact, preact"),
    ("resnet50(widen=2)", "widen=2 is not allowed for the imagenet family: it multiplies the cifar nets' stage "
                          "widths (WRN-d-k); an ImageNet net is widened by base_width= (wide_resnet50_2 is "
                          "resnet50b(base_width=128))"),
    ("resnet18(groups=32)", "groups=32 is not allowed with basic blocks: only bottleneck blocks have an inner 3x3"),
    ("wrn28_10(base_width=128)", "base_width=128 is not allowed with basic blocks"),
    ("resnet50(groups=0)", "groups=0 is not allowed: expected a whole number of at least 1"),
    ("resnet50(groups=two)", "groups=two is not allowed: expected a whole number of at least 1"),
    ("wrn28_10(widen=1.5)", "widen=1.5 is not allowed: expected a whole number of at least 1"),
    ("wrn28_10(dropout=1)", "dropout=1 is not allowed: a probability from 0 up to (not including) 1"),
    ("wrn28_10(dropout=lots)", "dropout=lots is not allowed: expected a number, e.g. dropout=0.3"),
    ("resnet110(gate_bias=-6)", "gate_bias=-6 is not allowed with shortcut=A: only the gated shortcuts "
                                "(exclusive_gate, shortcut_gate) have a gate"),
    ("resnet110(shortcut=exclusive_gate,gate_bias=nan)", "gate_bias=nan is not allowed: expected a finite number"),
    ("resnet110(unit=bn_after_add,zero_init=true)", "zero_init=true is not allowed with unit=bn_after_add"),
    ("cifar(depth=165,block=bottleneck)", "depth=165 is not a CIFAR ResNet depth: it must be 9n+2"),
])
def test_a_bad_value_of_a_new_key_is_one_line_naming_what_is_allowed(text, message):
    with pytest.raises(variants.SpecError) as error:
        variants.parse(text)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
