"""ResNet variants of He et al. 2015 and Bag of Tricks (He et al. 2018), built from composable parts.

    >>> import variants
    >>> model = variants.create("resnet56", num_classes=10)
    >>> variants.canonical("resnet50(stride_in=3x3,stem=deep,shortcut=D)")
    'resnet50d'
    >>> variants.available("resnet50*")
    ['resnet50', 'resnet50b', 'resnet50c', 'resnet50d']

See `variants.names` for the spec-string grammar and `variants.spec` for the axes.
"""

from __future__ import annotations

import fnmatch

from torch import nn

from .names import TimmSpec, describe, import_timm, parse
from .names import canonical as _canonical
from .presets import PRESETS, Preset
from .resnet import ResNet
from .spec import Spec, SpecError

__all__ = [
    "PRESETS", "Preset", "ResNet", "Spec", "SpecError", "TimmSpec",
    "available", "canonical", "create", "default_image_size", "describe", "parse",
]


def _as_spec(spec: str | Spec | TimmSpec) -> Spec | TimmSpec:
    return parse(spec) if isinstance(spec, str) else spec


def create(spec: str | Spec | TimmSpec, num_classes: int = 1000) -> nn.Module:
    """Build the network a spec names (a spec string, a Spec, or a TimmSpec), freshly initialised."""
    spec = _as_spec(spec)
    if isinstance(spec, TimmSpec):
        return import_timm().create_model(spec.name, pretrained=False, num_classes=num_classes)
    return ResNet(spec, num_classes=num_classes)


def canonical(spec: str | Spec | TimmSpec) -> str:
    """The one string that names a spec, whichever way it was written."""
    return _canonical(_as_spec(spec))


def available(pattern: str = "*") -> list[str]:
    """Preset names matching a shell-style pattern (``resnet5*``, ``plain*``), in registry order."""
    return [name for name in PRESETS if fnmatch.fnmatchcase(name, pattern)]


def default_image_size(spec: str | Spec | TimmSpec) -> int:
    """32 for the CIFAR family, 224 for ImageNet nets and timm models."""
    spec = _as_spec(spec)
    return 32 if isinstance(spec, Spec) and spec.family == "cifar" else 224
