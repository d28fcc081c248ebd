"""Spec strings: strict parsing, one canonical form, and errors that say what is allowed."""

import itertools

import pytest

import variants
from variants import Spec, SpecError


def test_every_preset_is_its_own_canonical_name():
    for name in variants.PRESETS:
        assert variants.canonical(name) == name


@pytest.mark.parametrize(
    "written, canonical",
    [
        ("resnet50(stride_in=3x3,stem=deep,shortcut=D)", "resnet50d"),
        ("resnet50b(stem=deep)", "resnet50c"),
        ("resnet20(shortcut=none)", "plain20"),
        ("cifar(depth=20)", "resnet20"),
        ("imagenet(depth=34)", "resnet34"),
        ("resnet50(depth=101)", "resnet101"),
        ("resnet34(shortcut=A)", "resnet34(shortcut=A)"),
        ("resnet34( shortcut=A )", "resnet34(shortcut=A)"),
        ("cifar(depth=38)", "cifar(depth=38)"),
        ("cifar(blocks=1-2-3,shortcut=B)", "cifar(blocks=1-2-3,shortcut=B)"),
        ("imagenet(blocks=2-2-2-2,block=bottleneck)", "imagenet(blocks=2-2-2-2,block=bottleneck)"),
        ("resnet18(block=bottleneck)", "imagenet(blocks=2-2-2-2,block=bottleneck)"),
        ("resnet50d(zero_init=true)", "resnet50d(zero_init=true)"),
        ("resnet50(stem=deep,shortcut=D)", "resnet50d(stride_in=1x1)"),
        ("timm/resnet50d", "timm/resnet50d"),
        ("resnet50b(se=true)", "resnet50b(se=true)"),
        ("resnet50(se=false)", "resnet50"),
        ("resnet20(se=true,zero_init=true)", "resnet20(zero_init=true,se=true)"),
        ("resnet50(se=true,shortcut=D,stem=deep,stride_in=3x3)", "resnet50d(se=true)"),
    ],
)
def test_canonical_form(written, canonical):
    assert variants.canonical(written) == canonical
    assert variants.parse(canonical) == variants.parse(written)


def test_canonical_round_trips_over_all_axes():
    for base, stem, shortcut, zero_init, se in itertools.product(
        ["resnet20", "resnet18", "resnet50", "cifar(depth=14)"], ["keep", "deep"], ["A", "B", "C", "D", "none"],
        ["true", "false"], ["true", "false"],
    ):
        options = [f"shortcut={shortcut}", f"zero_init={zero_init}", f"se={se}"] + (
            [f"stem={stem}"] if stem != "keep" else [])
        spec_text = f"{base[:-1]},{','.join(options)})" if "(" in base else f"{base}({','.join(options)})"
        spec = variants.parse(spec_text)
        assert variants.parse(variants.canonical(spec)) == spec, spec_text


def test_tweak_letters_are_derived_from_axes():
    assert [variants.parse(n).tweak for n in ("resnet50", "resnet50b", "resnet50c", "resnet50d")] == ["", "B", "C", "D"]
    assert variants.parse("resnet34(shortcut=B)").tweak == ""  # shortcut option B is not the ResNet-B tweak
    assert variants.parse("resnet18d").tweak == "D"
    assert variants.parse("resnet20").tweak == "" and variants.parse("resnet20(stem=deep)").tweak == "custom"


def test_available_filters_presets():
    assert variants.available("resnet50*") == ["resnet50", "resnet50b", "resnet50c", "resnet50d"]
    assert variants.available("plain*") == ["plain20", "plain32", "plain44", "plain56", "plain110", "plain18", "plain34"]
    assert variants.available("nothing*") == []
    required = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202", "resnet18", "resnet34",
                "resnet50", "resnet101", "resnet152", "resnet50b", "resnet50c", "resnet50d"}
    assert required <= set(variants.available())


@pytest.mark.parametrize(
    "text, message",
    [
        ("resnet51", "unknown variant 'resnet51'; closest: resnet56, resnet50"),
        ("resnet20(shortcat=A)", "unknown axis 'shortcat' (did you mean shortcut?); allowed: depth, blocks, block, "
                                 "stride_in, stem, shortcut, zero_init, se"),
        ("resnet20(se=yes)", "se=yes is not allowed; choose one of: true, false"),
        ("resnet20(shortcut=E)", "shortcut=E is not allowed; choose one of: A, B, C, D, none, scaled, exclusive_gate, shortcut_gate, dropout"),
        ("resnet20(stem=7x7)", "stem=7x7 is not allowed; choose one of: 3x3, deep"),
        ("resnet20(depth=21)", "depth=21 is not a CIFAR ResNet depth: it must be 6n+2"),
        ("cifar(depth=twenty)", "depth=twenty is not allowed: expected whole numbers"),
        ("imagenet(depth=42)", "depth=42 is not an ImageNet depth of Table 1"),
        ("resnet18(stride_in=1x1)", "stride_in=1x1 is not allowed with basic blocks"),
        ("resnet20(groups=32)", "groups=32 is not allowed with basic blocks: only bottleneck blocks have an inner "
                                "3x3 that groups= and base_width= shape (ResNeXt, wide ResNets), e.g. "
                                "resnet50b(groups=32,base_width=4)"),
        ("resnet50(blocks=3-4-6)", "blocks=3-4-6 has 3 stages; the imagenet family has 4"),
        ("resnet50(zero_init=yes)", "zero_init=yes is not allowed; choose one of: true, false"),
        ("resnet50(shortcut=A,shortcut=B)", "shortcut is given twice"),
        ("resnet50(shortcut)", "bad option 'shortcut'"),
        ("resnet50(depth=50,blocks=3-4-6-3)", "give depth= or blocks=, not both"),
        ("cifar", "cifar needs depth= or blocks="),
        ("resnet50(", "cannot parse variant spec"),
        ("timm/resnet50x", "unknown timm model 'resnet50x'; closest: timm/resnet50"),
        ("timm/resnet50(shortcut=A)", "timm/resnet50 takes no options"),
    ],
)
def test_bad_specs_raise_clear_value_errors(text, message):
    with pytest.raises(ValueError) as error:
        variants.parse(text)
    assert isinstance(error.value, SpecError)
    assert message in str(error.value)


def test_bad_spec_fails_before_anything_is_built(monkeypatch):
    def must_not_build(*args, **kwargs):
        raise AssertionError("a module was built for an invalid spec")

    monkeypatch.setattr(variants.resnet.ResNet, "__init__", must_not_build)
    with pytest.raises(SpecError, match="6n\\+2"):
        variants.create("resnet20(depth=22)", num_classes=10)


def test_spec_validates_on_construction():
    with pytest.raises(SpecError, match="shortcut=X is not allowed"):
        Spec(family="cifar", block="basic", layers=(3, 3, 3), stem="3x3", shortcut="X")
    with pytest.raises(SpecError, match="the cifar family has 3 stages"):
        Spec(family="cifar", block="basic", layers=(3, 3), stem="3x3", shortcut="A")


def test_axes_are_declared_once_on_the_spec():
    names = [axis.name for axis in Spec.axes()]
    assert names == ["family", "block", "layers", "stride_in", "stem", "shortcut", "zero_init", "se", "unit",
                     "groups", "base_width", "widen", "dropout", "gate_bias", "depth", "tweak", "plain"]
    assert [axis.name for axis in Spec.option_axes()] == ["stride_in", "stem", "shortcut", "zero_init", "se", "unit",
                                                          "groups", "base_width", "widen", "dropout", "gate_bias"]
    spec = variants.parse("resnet50d(se=true)")
    assert spec.axis_values() == {"family": "imagenet", "block": "bottleneck", "layers": [3, 4, 6, 3],
                                  "stride_in": "3x3", "stem": "deep", "shortcut": "D", "zero_init": False,
                                  "se": True, "unit": "original", "groups": 1, "base_width": 64, "widen": 1,
                                  "dropout": 0.0, "gate_bias": 0.0, "depth": 50, "tweak": "D", "plain": False}
    assert spec.tags() == ["family:imagenet", "block:bottleneck", "stem:deep", "shortcut:D", "se:true",
                           "unit:original", "depth:50", "tweak:D"]
    assert variants.parse("resnet20").axis_values()["tweak"] == "none"


def test_describe_reads_every_axis():
    assert variants.describe(variants.parse("resnet50d(se=true,zero_init=true)")) == (
        "imagenet, 50 layers, bottleneck blocks 3-4-6-3, stride in 3x3 (ResNet-B), deep stem, "
        "ResNet-D avg-pool shortcut, zero-init last BN, squeeze-and-excitation (reduction 16)")
