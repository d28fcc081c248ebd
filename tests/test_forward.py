"""Every variant runs forward and backward with the right shapes, and each axis builds what it says."""

import pytest
import torch
from torch import nn

import variants
from variants import Spec, SpecError, layers
from variants.layers import MissingBuilderError, ZeroPadShortcut
from variants.spec import Axis


def forward_backward(spec: str, image_size: int, num_classes: int) -> None:
    model = variants.create(spec, num_classes=num_classes)
    images = torch.randn(2, 3, image_size, image_size)
    logits = model(images)
    assert logits.shape == (2, num_classes)
    logits.logsumexp(dim=1).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


CIFAR = [name for name in variants.PRESETS if variants.PRESETS[name].spec.family == "cifar"]
IMAGENET = [name for name in variants.PRESETS if variants.PRESETS[name].spec.family == "imagenet"]


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_presets_forward_backward(name):
    forward_backward(name, 32, 10)


@pytest.mark.parametrize("name", IMAGENET)
@pytest.mark.parametrize("image_size", [pytest.param(224, marks=pytest.mark.slow), 32])  # 224: ~30 s in all
def test_imagenet_presets_forward_backward(name, image_size):
    forward_backward(name, image_size, 1000 if image_size == 224 else 10)


@pytest.mark.parametrize("option", ["A", "B", "C", "D", "none"])
@pytest.mark.parametrize("net, image_size", [("resnet20", 32), ("resnet18", 224), ("resnet18", 32), ("resnet50", 32)])
def test_every_shortcut_option_forward_backward(net, image_size, option):
    forward_backward(f"{net}(shortcut={option})", image_size, 10)


def count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def shortcuts(model: nn.Module) -> list:
    return [block.shortcut for stage in model.stage_names for block in getattr(model, stage)]


def test_shortcut_options_build_what_the_paper_describes():
    params = {o: sum(p.numel() for p in variants.create(f"resnet18(shortcut={o})").parameters()) for o in "ABCD"}
    params["none"] = sum(p.numel() for p in variants.create("plain18").parameters())
    assert params["A"] == params["none"] < params["B"] == params["D"] < params["C"]

    a, b, c, d, plain = (variants.create(f"resnet18(shortcut={o})") for o in ("A", "B", "C", "D", "none"))
    assert count(a, ZeroPadShortcut) == 3 and count(a, nn.Conv2d) == count(plain, nn.Conv2d)
    # B and D project where the shape changes (3 of 8 blocks), C on every block.
    assert sum(isinstance(s, nn.Sequential) for s in shortcuts(b)) == 3
    assert sum(isinstance(s, nn.Sequential) for s in shortcuts(c)) == 8
    assert count(d, nn.AvgPool2d) == 3 and sum(isinstance(s, nn.Sequential) for s in shortcuts(d)) == 3
    assert all(s is None for s in shortcuts(plain))


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_stride_placement_original_versus_resnet_b():
    original, tweaked = variants.create("resnet50"), variants.create("resnet50b")
    assert original.layer2[0].conv1.stride == (2, 2) and original.layer2[0].conv2.stride == (1, 1)
    assert tweaked.layer2[0].conv1.stride == (1, 1) and tweaked.layer2[0].conv2.stride == (2, 2)


def test_stems():
    seven = variants.create("resnet50").stem
    assert [m.kernel_size for m in seven if isinstance(m, nn.Conv2d)] == [(7, 7)]
    deep = variants.create("resnet50c").stem
    convs = [m for m in deep if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels, c.stride) for c in convs] == [
        ((3, 3), 32, (2, 2)), ((3, 3), 32, (1, 1)), ((3, 3), 64, (1, 1))
    ]
    assert count(deep, nn.MaxPool2d) == 1
    cifar = variants.create("resnet20").stem
    assert [(c.kernel_size, c.out_channels, c.stride) for c in cifar if isinstance(c, nn.Conv2d)] == [((3, 3), 16, (1, 1))]
    assert count(variants.create("resnet20(stem=deep)").stem, nn.Conv2d) == 3


def test_cifar_stages_run_on_32_16_8_maps_with_16_32_64_filters():
    model = variants.create("resnet20", num_classes=10)
    x = model.stem(torch.randn(1, 3, 32, 32))
    shapes = []
    for stage in model.stage_names:
        x = getattr(model, stage)(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_kaiming_fan_out_init_and_optional_zero_init():
    model = variants.create("resnet56", num_classes=10)
    conv = model.layer3[0].conv2  # 64 -> 64, 3x3: fan_out = 64 * 9
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert all(block.bn2.weight.eq(1).all() for block in model.layer1)

    zeroed = variants.create("resnet20(zero_init=true)", num_classes=10).eval()
    assert all(block.bn(block.conv_count).weight.eq(0).all() for stage in zeroed.stage_names for block in getattr(zeroed, stage))
    block = zeroed.layer1[0]
    x = torch.randn(2, 16, 32, 32)
    with torch.no_grad():  # with gamma = 0 the residual branch is silent: the block is relu(shortcut)
        assert torch.allclose(block(x), torch.relu(x))


# ---- builder registries: a value is either built or rejected, never mis-built ---------------------------------

def allow_in_spec_only(monkeypatch, axis_name: str, extra) -> None:
    """What a developer does who adds a value to the Spec's allowed values and forgets its builder."""
    real_choices = Axis.choices

    def choices(self, spec):
        allowed = real_choices(self, spec)
        return allowed + (extra,) if self.name == axis_name else allowed

    monkeypatch.setattr(Axis, "choices", choices)


@pytest.mark.parametrize(
    "axis_name, value, written, registered",
    [
        ("stem", "9x9", "resnet18(stem=9x9)", "7x7, deep"),
        ("stem", "5x5", "resnet20(stem=5x5)", "3x3, deep"),
        ("shortcut", "E", "resnet20(shortcut=E)", "A, B, C, D, none, scaled, exclusive_gate, shortcut_gate, dropout"),
        ("stride_in", "2x2", "resnet50(stride_in=2x2)", "1x1, 3x3"),
        ("block", "wide", "imagenet(blocks=1-1-1-1,block=wide)", "basic, bottleneck"),
    ],
)
def test_a_value_the_spec_allows_without_a_builder_fails_loudly(monkeypatch, axis_name, value, written, registered):
    with pytest.raises(SpecError):  # before: rejected by the spec
        variants.parse(written)
    allow_in_spec_only(monkeypatch, axis_name, value)
    spec = variants.parse(written)
    assert getattr(spec, axis_name) == value
    with pytest.raises(MissingBuilderError) as error:
        variants.create(spec)
    assert str(error.value) == (f"{axis_name}={value} is allowed by the Spec but variants/layers.py has no builder "
                                f"for it (registered: {registered})")


def test_allowed_values_are_the_registry_keys():
    resnet18, resnet20, resnet50 = (variants.parse(name) for name in ("resnet18", "resnet20", "resnet50"))
    assert Spec.axis("stem").choices(resnet18) == tuple(layers.STEMS["imagenet"]) == ("7x7", "deep")
    assert Spec.axis("stem").choices(resnet20) == tuple(layers.STEMS["cifar"]) == ("3x3", "deep")
    assert Spec.axis("shortcut").choices(resnet20) == tuple(layers.SHORTCUTS)
    assert Spec.axis("stride_in").choices(resnet50) == tuple(layers.STRIDE_PLACEMENTS)
    assert Spec.axis("block").choices(resnet50) == tuple(layers.BLOCKS)


def test_a_builder_added_to_a_registry_is_allowed_and_built(monkeypatch):
    monkeypatch.setitem(layers.SHORTCUTS, "twice", layers.projection)
    model = variants.create("resnet20(shortcut=twice)")
    assert variants.canonical("resnet20(shortcut=twice)") == "resnet20(shortcut=twice)"
    assert all(isinstance(s, nn.Sequential) for s in shortcuts(model))


# ---- squeeze-and-excitation: the axis added through the declarations --------------------------------------

def test_se_sits_after_the_last_bn_and_gates_channels():
    model = variants.create("resnet50b(se=true)")
    block = model.layer1[0]
    assert isinstance(block.attn, layers.SqueezeExcite)
    assert (block.attn.fc1.in_channels, block.attn.fc1.out_channels) == (256, 16)  # reduction 16 of 4 x 64
    assert variants.create("resnet20(se=true)").layer3[0].attn.fc1.out_channels == 4  # 64 // 16
    assert variants.create("resnet50b").layer1[0].attn is None
    se = layers.SqueezeExcite(8, reduction=4)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        gate = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean((2, 3), keepdim=True)))))
        assert torch.allclose(se(x), x * gate)


@pytest.mark.parametrize("spec, image_size", [("resnet20(se=true)", 32), ("resnet18(se=true,shortcut=D)", 64),
                                              ("resnet50d(se=true)", 64)])
def test_se_variants_forward_backward(spec, image_size):
    forward_backward(spec, image_size, 10)
