"""Resumable training state in safetensors (model, optimiser moments) plus a JSON header."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.config import TrainConfig


def save_checkpoint(directory: Path, model: nn.Module, optimiser: torch.optim.Optimizer,
                    progress: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    # Saved from the CPU whatever the training device, so a run resumes anywhere.
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, state in optimiser.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    # Write both files under temporary names first: an interrupted save never looks complete.
    save_file(tensors, str(directory / "checkpoint.safetensors.tmp"))
    (directory / "checkpoint.json.tmp").write_text(json.dumps(progress, indent=2))
    os.replace(directory / "checkpoint.safetensors.tmp", directory / "checkpoint.safetensors")
    os.replace(directory / "checkpoint.json.tmp", directory / "checkpoint.json")


def model_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's state dict out of a checkpoint's tensors (the optimiser's left out)."""
    return {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}


def load_checkpoint(directory: Path, model: nn.Module,
                    optimiser: torch.optim.Optimizer) -> dict[str, Any] | None:
    header = directory / "checkpoint.json"
    weights = directory / "checkpoint.safetensors"
    if not (header.exists() and weights.exists()):
        return None
    tensors = load_file(str(weights))
    model.load_state_dict(model_weights(tensors))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    saved = optimiser.state_dict()
    saved["state"] = state
    optimiser.load_state_dict(saved)
    meta: dict[str, Any] = json.loads(header.read_text())
    return meta


def checkpoint_model(weights: Path) -> tuple[EfficientNetLite, TrainConfig]:
    """The network a run's checkpoint holds, built as the recipe beside it says, in eval mode.

    A header without a recipe (runs that predate it) reads as the defaults: Lite0 at 224 px.
    """
    header = weights.with_suffix(".json")
    recipe = json.loads(header.read_text()).get("config", {}) if header.exists() else {}
    config = TrainConfig.model_validate(recipe)
    model = EfficientNetLite(num_classes=len(config.classes), architecture=config.architecture)
    model.load_state_dict(model_weights(load_file(str(weights))))
    return model.eval(), config
