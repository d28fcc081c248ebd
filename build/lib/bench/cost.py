"""The cost of a model as the paper counts it: parameters and multiply-adds (the paper's "FLOPs", §3.3).

fvcore counts one fused multiply-add as one flop, so its total is directly the paper's figure; we label
it MACs to keep the two meanings of "FLOPs" apart. Counting is done on `model.eval()` (fvcore counts BN
differently in train mode) with a batch of one. fvcore has no handler for some ops (the residual add,
max pooling, option A's zero-padding) and skips them; `Cost.not_counted` lists what it skipped, so
every report can say so. ReLU it ignores by design. Convs, the fc, BN and the global average pool count.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

import variants

from .errors import UserError


@dataclass(frozen=True)
class StageCost:
    name: str
    params: int
    macs: int


@dataclass(frozen=True)
class Cost:
    spec: str
    image_size: int
    num_classes: int
    params: int
    macs: int
    stages: list[StageCost] = field(default_factory=list)
    # op name -> number of calls fvcore skipped (no handler); ReLU is not listed: fvcore ignores it outright.
    not_counted: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def measure(spec: str | variants.Spec | variants.TimmSpec, image_size: int | None = None,
            num_classes: int | None = None) -> Cost:
    """Parameters and multiply-adds of a freshly built `spec` at image_size x image_size."""
    spec = variants.parse(spec) if isinstance(spec, str) else spec
    if image_size is None:
        image_size = variants.default_image_size(spec)
    if num_classes is None:
        num_classes = 10 if isinstance(spec, variants.Spec) and spec.family == "cifar" else 1000
    if image_size < 1:
        raise UserError(f"image size {image_size} is not allowed: it must be at least 1")
    model = variants.create(spec, num_classes=num_classes)
    return model_cost(model, variants.canonical(spec), image_size, num_classes)


def count_macs(module: nn.Module, example: torch.Tensor) -> tuple[dict[str, int], dict[str, int]]:
    """fvcore multiply-adds of `module` in eval mode on `example`, per submodule ('' = total), and the ops
    fvcore skipped. The module's train/eval mode is restored."""
    with _quiet():
        from fvcore.nn import FlopCountAnalysis

        was_training = module.training
        module.eval()
        analysis = FlopCountAnalysis(module, example)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        try:
            return dict(analysis.by_module()), dict(analysis.unsupported_ops())
        finally:
            module.train(was_training)


def model_cost(model: nn.Module, spec: str, image_size: int, num_classes: int) -> Cost:
    """Cost of an already built model (train code passes its own model, so nothing is counted twice)."""
    parameter = next(model.parameters())
    image = torch.zeros(1, 3, image_size, image_size, device=parameter.device, dtype=parameter.dtype)
    macs_by_module, skipped = count_macs(model, image)
    with _quiet():
        from fvcore.nn import parameter_count
    params_by_module = parameter_count(model)
    stages = [
        StageCost(name, params_by_module.get(name, 0), macs_by_module.get(name, 0))
        for name, _ in model.named_children()
        if params_by_module.get(name, 0) or macs_by_module.get(name, 0)
    ]
    return Cost(
        spec=spec,
        image_size=image_size,
        num_classes=num_classes,
        params=params_by_module[""],
        macs=macs_by_module[""],
        stages=stages,
        not_counted=dict(sorted(skipped.items())),
    )


@contextlib.contextmanager
def _quiet():
    """fvcore's tracer warns through logging and `warnings` (torch.jit deprecation); a CLI must not show that."""
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
