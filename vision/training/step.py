"""One optimisation step, shared by training from ImageNet and by retraining a served model."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F

from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.augment import AugmentConfig, augment_batch, normalise


def train_step(model: EfficientNetLite, optimiser: torch.optim.Optimizer,
               images: torch.Tensor, labels: torch.Tensor, *, resolution: int,
               augment: AugmentConfig, generator: torch.Generator, lr: float,
               label_smoothing: float,
               autocast: AbstractContextManager[object] | None = None) -> float:
    """Augment a batch of cached uint8 images, take one step at ``lr``; the batch's loss.

    The loss is computed in fp32 even when the forward pass runs under bf16 autocast.
    """
    x = normalise(augment_batch(images, resolution, augment, generator))
    for group in optimiser.param_groups:
        group["lr"] = lr
    with autocast or nullcontext():
        logits = model(x.contiguous(memory_format=torch.channels_last))
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.item())
