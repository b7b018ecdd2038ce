"""EfficientNet-Lite0, -Lite1 and -Lite2 assembled from torchvision building blocks.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 and a fixed 32-channel stem and
1280-channel head (Google's TF-Lite variant); Lite1 and Lite2 repeat more blocks (and Lite2 widens
them) with the same stem and head. The published checkpoint was trained in TensorFlow
with "SAME" padding, which pads strided convolutions asymmetrically; ``SamePad`` reproduces it so
the ImageNet weights behave exactly as trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation, StochasticDepth

# TF's BatchNorm defaults (momentum 0.99 there is 0.01 here).
BatchNorm = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


@dataclass(frozen=True)
class StageConfig:
    expand_ratio: int
    kernel: int
    stride: int
    out_channels: int
    repeats: int


LITE0_STAGES: tuple[StageConfig, ...] = (
    StageConfig(1, 3, 1, 16, 1),
    StageConfig(6, 3, 2, 24, 2),
    StageConfig(6, 5, 2, 40, 2),
    StageConfig(6, 3, 2, 80, 3),
    StageConfig(6, 5, 1, 112, 3),
    StageConfig(6, 5, 2, 192, 4),
    StageConfig(6, 3, 1, 320, 1),
)
# Written out rather than derived from width and depth multipliers: the Lite variants keep the
# first and last stages unscaled, and strict loading of the published weights checks each table.
LITE1_STAGES: tuple[StageConfig, ...] = (
    StageConfig(1, 3, 1, 16, 1),
    StageConfig(6, 3, 2, 24, 3),
    StageConfig(6, 5, 2, 40, 3),
    StageConfig(6, 3, 2, 80, 4),
    StageConfig(6, 5, 1, 112, 4),
    StageConfig(6, 5, 2, 192, 5),
    StageConfig(6, 3, 1, 320, 1),
)
LITE2_STAGES: tuple[StageConfig, ...] = (
    StageConfig(1, 3, 1, 16, 1),
    StageConfig(6, 3, 2, 24, 3),
    StageConfig(6, 5, 2, 48, 3),
    StageConfig(6, 3, 2, 88, 4),
    StageConfig(6, 5, 1, 120, 4),
    StageConfig(6, 5, 2, 208, 5),
    StageConfig(6, 3, 1, 352, 1),
)
ARCHITECTURES: dict[str, tuple[StageConfig, ...]] = {
    "efficientnet_lite0": LITE0_STAGES,
    "efficientnet_lite1": LITE1_STAGES,
    "efficientnet_lite2": LITE2_STAGES,
}


def stages_of(architecture: str) -> tuple[StageConfig, ...]:
    """The stage table of ``architecture``; an unknown name is refused with the known ones."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture; known: {', '.join(ARCHITECTURES)} "
                         f"(not {architecture!r})")
    return ARCHITECTURES[architecture]


STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


class SamePad(nn.Module):
    """TensorFlow "SAME" zero padding for a strided convolution, computed from the input size."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h = self._total(height)
        pad_w = self._total(width)
        return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))

    def _total(self, size: int) -> int:
        return max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)


def _conv(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU6,
) -> Conv2dNormActivation:
    # Strided convs get their padding from SamePad; stride 1 "SAME" is plain symmetric padding.
    padding = 0 if stride > 1 else (kernel - 1) // 2
    return Conv2dNormActivation(
        cin, cout, kernel, stride, padding=padding, groups=groups,
        norm_layer=BatchNorm, activation_layer=activation, bias=False,
    )


class MBConvLite(nn.Module):
    """Inverted residual block without squeeze-excitation."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand_ratio: int,
        drop_path: float,
    ) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.expand = _conv(cin, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.pad = SamePad(kernel, stride) if stride > 1 else nn.Identity()
        self.depthwise = _conv(hidden, hidden, kernel, stride, groups=hidden)
        self.project = _conv(hidden, cout, 1, activation=None)
        self.use_residual = stride == 1 and cin == cout
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(self.depthwise(self.pad(self.expand(x))))
        if self.use_residual:
            out = x + self.drop_path(out)
        return out


class EfficientNetLite(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2,
                 drop_path: float = 0.2, architecture: str = "efficientnet_lite0") -> None:
        super().__init__()
        stages = stages_of(architecture)
        self.architecture = architecture
        self.stem_pad = SamePad(3, 2)
        self.stem = _conv(3, STEM_CHANNELS, 3, 2)
        total = sum(stage.repeats for stage in stages)
        blocks: list[nn.Module] = []
        cin = STEM_CHANNELS
        for stage in stages:
            for repeat in range(stage.repeats):
                blocks.append(MBConvLite(
                    cin, stage.out_channels, stage.kernel,
                    stage.stride if repeat == 0 else 1, stage.expand_ratio,
                    drop_path=drop_path * len(blocks) / total,
                ))
                cin = stage.out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = _conv(cin, HEAD_CHANNELS, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d embedding (what the classifier head sees)."""
        return self.features_from(self.trunk(x, len(self.blocks)), len(self.blocks))

    def trunk(self, x: torch.Tensor, blocks: int) -> torch.Tensor:
        """The activations after the stem and the first ``blocks`` blocks: where a network
        that shares them with another (a screen, a tail being adapted) parts from it."""
        activations: torch.Tensor = self.blocks[:blocks](self.stem(self.stem_pad(x)))
        return activations

    def features_from(self, activations: torch.Tensor, blocks: int) -> torch.Tensor:
        """The pooled embedding (``features``) from ``trunk(x, blocks)``'s activations."""
        return torch.flatten(self.pool(self.head(self.blocks[blocks:](activations))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.dropout(self.features(x)))
        return logits

    def replace_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)


def convert_lukemelas_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-style ``efficientnet_pytorch`` state dict to this module's names."""
    top = {"_conv_stem": "stem.0", "_bn0": "stem.1", "_conv_head": "head.0",
           "_bn1": "head.1", "_fc": "classifier"}
    block = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0",
             "_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            new = f"blocks.{parts[1]}.{block[parts[2]]}.{'.'.join(parts[3:])}"
        else:
            new = f"{top[parts[0]]}.{'.'.join(parts[1:])}"
        renamed[new] = tensor
    return renamed
