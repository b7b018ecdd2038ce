"""A small network that finds the centre of every red cell, for fields where colour rules fail.

The distance-peak rule (``detect_red_cells``) loses pale cells (only their rims pass the colour
split) and cells overlapping by more than a third (no waist between them). This network is the
ImageNet EfficientNet-Lite0 trunk up to stride 16, with its stride-8 features joined back in, and
two small heads at stride 8: a centre heatmap (one peak per cell, as in CenterNet) and the cell's
box size. It reads the white-balanced field, so a colour cast is undone before it sees the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from vision.field.detect import BALANCED_WHITE
from vision.model.artifact import load_with_card, save_with_card
from vision.model.efficientnet_lite import EfficientNetLite

STRIDE = 8
# The network reads the working image as it is: a red cell about 51 px across (BCCD's 640 px
# fields at half size, where it was trained), six heatmap positions, which still separates
# overlapping cells.
NET_SCALE = 1.0
# Lite0's blocks: stride 8 after the fifth (40 channels), stride 16 after the eleventh (112).
STRIDE8_BLOCKS = 5
STRIDE16_BLOCKS = 11
STRIDE8_CHANNELS = 40
STRIDE16_CHANNELS = 112


class CentreNet(nn.Module):
    def __init__(self, trunk: EfficientNetLite, width: int = 64) -> None:
        super().__init__()
        self.stem_pad = trunk.stem_pad
        self.stem = trunk.stem
        self.early = nn.Sequential(*list(trunk.blocks)[:STRIDE8_BLOCKS])
        self.late = nn.Sequential(*list(trunk.blocks)[STRIDE8_BLOCKS:STRIDE16_BLOCKS])
        self.fuse = nn.Sequential(
            nn.Conv2d(STRIDE8_CHANNELS + STRIDE16_CHANNELS, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.heatmap = nn.Conv2d(width, 1, 1)
        self.size = nn.Conv2d(width, 2, 1)
        # CenterNet's prior: few pixels are centres, so start the heatmap near 0.1.
        nn.init.constant_(self.heatmap.bias, -2.19)  # type: ignore[arg-type]  # Conv2d has one

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmap logits (N, 1, H/8, W/8) and log box sizes in stride units (N, 2, H/8, W/8)."""
        eight = self.early(self.stem(self.stem_pad(x)))
        sixteen = self.late(eight)
        up = F.interpolate(sixteen, size=eight.shape[-2:], mode="bilinear", align_corners=False)
        joined = self.fuse(torch.cat([eight, up], dim=1))
        return self.heatmap(joined), self.size(joined)


def at_net_scale(balanced: np.ndarray) -> np.ndarray:
    """The white-balanced working image (HxWx3, 0-255) at ``NET_SCALE``, as 8-bit values."""
    image = Image.fromarray(np.clip(balanced, 0, 255).astype(np.uint8))
    size = (round(image.width * NET_SCALE), round(image.height * NET_SCALE))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def to_input(balanced: np.ndarray) -> torch.Tensor:
    """A white-balanced HxWx3 field (0-255 floats) as the network's normalised 1x3xHxW input.

    Height and width are padded up to a multiple of 16 with the balanced background's white.
    """
    height, width = balanced.shape[:2]
    pad_h, pad_w = (-height) % 16, (-width) % 16
    array = np.clip(balanced, 0, 255).astype(np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    if pad_h or pad_w:
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), value=BALANCED_WHITE / 127.5 - 1.0)
    return tensor.unsqueeze(0)


@dataclass(frozen=True)
class Centre:
    x: float  # working-image pixels
    y: float
    width: float
    height: float
    score: float


def decode(heatmap: torch.Tensor, size: torch.Tensor, threshold: float,
           shape: tuple[int, int]) -> list[Centre]:
    """Cells from one image's outputs: local maxima of the heatmap above ``threshold``.

    ``heatmap`` holds logits (1, H, W) and ``size`` log sizes (2, H, W); ``shape`` is the
    unpadded image's (height, width), so that maxima in the padding are dropped.
    """
    probability = torch.sigmoid(heatmap)
    peaks = (probability == F.max_pool2d(probability, 3, stride=1, padding=1)) & (
        probability >= threshold)
    ys, xs = torch.nonzero(peaks[0], as_tuple=True)
    centres = []
    height, width = shape
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        cx, cy = (x + 0.5) * STRIDE, (y + 0.5) * STRIDE
        if cx >= width or cy >= height:
            continue
        w, h = (torch.exp(size[:, y, x]) * STRIDE).tolist()
        centres.append(Centre(cx, cy, w, h, float(probability[0, y, x])))
    return centres


def save_centre_net(model: CentreNet, path: Path, card: dict[str, object]) -> None:
    """Weights as safetensors beside a JSON card that records their SHA-256."""
    save_with_card(model.state_dict(), path, card)


def load_centre_net(path: Path) -> tuple[CentreNet, dict[str, object]]:
    """The network and its card; refuses weights whose SHA-256 differs from the card's."""
    weights, card = load_with_card(path)
    model = CentreNet(EfficientNetLite(num_classes=1000))
    model.load_state_dict(weights, strict=True)
    return model.eval(), card
