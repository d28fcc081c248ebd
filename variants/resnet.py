"""One ResNet, built from a Spec: stem, stages of blocks, global average pool, fc (Table 1 and §4.2).

Every variant of the paper, of Bag of Tricks and of the follow-up papers (pre-activation units, ResNeXt, wide
nets) is this class with a different Spec; none has a class of its own: each part comes from its registry in
`variants.layers`, looked up by the Spec's value. Initialisation is the paper's: He (Kaiming) normal, fan_out,
for every conv (the gates' 1x1 convs too, their bias at gate_bias); BN at gamma=1, beta=0; optionally each
block's last BN (a pre-activation unit's last conv) at 0 so that each block starts as its shortcut.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch
from torch import nn

from .layers import ATTENTION, BLOCKS, UNITS, BlockConfig, builder, make_stem
from .spec import SE_REDUCTION, Spec, SpecError


class ResNet(nn.Module):
    def __init__(self, spec: Spec, num_classes: int = 1000):
        super().__init__()
        if num_classes < 1:
            raise SpecError(f"num_classes={num_classes} is not allowed: it must be at least 1")
        self.spec = spec
        unit = builder(UNITS, "unit", spec.unit)
        self.stem, channels = make_stem(spec.family, spec.stem, norm=unit.stem_norm)
        kind = builder(BLOCKS, "block", spec.block)
        # What every block of this net shares; each block adds its own channels, width and stride.
        shared = BlockConfig(in_channels=0, width=0, shortcut=spec.shortcut, stride_in=spec.stride_in,
                             attn_layer=self.attention(spec), unit=spec.unit, groups=spec.groups,
                             base_width=spec.base_width, dropout=spec.dropout, gate_bias=spec.gate_bias)
        self.stage_names: list[str] = []
        for index, (blocks, width) in enumerate(zip(spec.layers, spec.widths)):
            # The first stage keeps the stem's resolution; each later one halves it in its first block.
            stride = 1 if index == 0 else 2
            stage = []
            for position in range(blocks):
                config = replace(shared, in_channels=channels, width=width, stride=stride if position == 0 else 1)
                stage.append(kind.module(config))
                channels = width * kind.expansion
            name = f"layer{index + 1}"
            self.add_module(name, nn.Sequential(*stage))
            self.stage_names.append(name)
        # Units that end before their norm or ReLU (pre-activation) leave the last ones to the net, before the
        # pool: Identity Mappings' "extra BN and ReLU after the final addition".
        if kind.final_norm or unit.final == "bn_relu":
            self.final_norm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        elif unit.final == "relu":
            self.final_norm = nn.Sequential(nn.ReLU(inplace=True))
        else:
            self.final_norm = None
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        self._init_weights(spec.zero_init)

    @staticmethod
    def attention(spec: Spec):
        """The attention module builder the spec asks for in every block, or None."""
        if not spec.se:
            return None
        return functools.partial(builder(ATTENTION, "se", "se"), reduction=SE_REDUCTION)

    def _init_weights(self, zero_init: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init:
            for module in self.modules():
                if isinstance(module, tuple(kind.module for kind in BLOCKS.values())):
                    module.zero_init_last()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x if self.final_norm is None else self.final_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pool(self.forward_features(x)).flatten(1)
        return self.fc(x)
