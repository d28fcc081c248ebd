"""Our variants against the reference implementations: same weights in, same outputs out.

Weights are copied tensor by tensor in registration order (both sides list conv, BN, ... in the order of the
paper's figures), with shapes checked on the way, so a wrong wiring shows up as different outputs.
"""

import pytest
import timm
import torch
import torchvision
from torch import nn

import variants


def randomize_batchnorm(model: nn.Module) -> None:
    """Give every BN non-trivial statistics and affine terms, so that eval-mode BN is not the identity."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)


def copy_in_order(source: nn.Module, target: nn.Module) -> None:
    source_state = list(source.state_dict().items())
    target_state = list(target.state_dict().items())
    assert len(source_state) == len(target_state), "the two nets hold different numbers of tensors"
    new_state = {}
    for (source_key, value), (target_key, slot) in zip(source_state, target_state):
        assert value.shape == slot.shape, f"{source_key} {tuple(value.shape)} -> {target_key} {tuple(slot.shape)}"
        new_state[target_key] = value
    target.load_state_dict(new_state)


def outputs_of_both(reference: nn.Module, ours_spec: str) -> tuple[torch.Tensor, torch.Tensor]:
    randomize_batchnorm(reference)
    ours = variants.create(ours_spec, num_classes=1000)
    copy_in_order(reference, ours)
    batch = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        return reference.eval()(batch), ours.eval()(batch)


@pytest.mark.parametrize(
    "reference_name, ours_spec",
    [
        ("torchvision/resnet18", "resnet18"),
        ("torchvision/resnet34", "resnet34"),
        pytest.param("torchvision/resnet50", "resnet50b", marks=pytest.mark.slow),
        pytest.param("torchvision/resnet101", "resnet101b", marks=pytest.mark.slow),
        pytest.param("timm/resnet50c", "resnet50c", marks=pytest.mark.slow),
        pytest.param("timm/resnet50d", "resnet50d", marks=pytest.mark.slow),
        pytest.param("timm/seresnet50", "resnet50b(se=true)", marks=pytest.mark.slow),
    ],
)
def test_same_outputs_as_reference_with_copied_weights(reference_name, ours_spec):
    library, name = reference_name.split("/")
    if library == "torchvision":
        reference = getattr(torchvision.models, name)(weights=None)
    else:
        reference = timm.create_model(name, pretrained=False)
    expected, actual = outputs_of_both(reference, ours_spec)
    assert expected.abs().max() > 0.1  # a meaningful signal, not all zeros
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_original_stride_placement_differs_from_torchvision():
    """torchvision's resnet50 is ResNet-B: in our original (stride in the 1x1) the same weights compute
    something else. This is the control that shows the comparison above can fail."""
    expected, actual = outputs_of_both(torchvision.models.resnet50(weights=None), "resnet50")
    assert (actual - expected).abs().max() > 1e-2


def test_timm_spec_builds_timm_model():
    model = variants.create("timm/resnet50d", num_classes=10)
    assert type(model).__module__.startswith("timm.")
    assert model.fc.out_features == 10


def test_se_resnet50_has_timms_parameter_count():
    """SE-ResNet-50 (timm's seresnet50: ResNet-B with SE, reduction 16, after each block's last BN)."""
    ours = sum(p.numel() for p in variants.create("resnet50b(se=true)").parameters())
    theirs = sum(p.numel() for p in timm.create_model("seresnet50", pretrained=False).parameters())
    assert ours == theirs == 28_088_024
    assert ours - sum(p.numel() for p in variants.create("resnet50b").parameters()) == 2_530_992
