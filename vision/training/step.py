"""One optimisation step, shared by training from ImageNet and by retraining a served model."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vision.model.efficientnet_lite import EfficientNetLite
from vision.training.augment import AugmentConfig, augment_batch, normalise


@dataclass(frozen=True)
class Teacher:
    """A model whose answers over its own classes (the student's first ones) the student keeps."""

    model: EfficientNetLite
    weight: float
    temperature: float

    def disagreement(self, x: torch.Tensor, student_logits: torch.Tensor,
                     autocast: AbstractContextManager[object] | None) -> torch.Tensor:
        """KL divergence from the teacher's softened answer to the student's, over the
        teacher's classes only (the student's other classes take no part), scaled by T^2 so
        its gradients keep their size whatever the temperature."""
        with torch.no_grad(), autocast or nullcontext():
            taught = self.model(x).float()
        known = taught.shape[1]
        t = self.temperature
        return F.kl_div(F.log_softmax(student_logits[:, :known] / t, dim=1),
                        F.log_softmax(taught / t, dim=1), log_target=True,
                        reduction="batchmean") * t * t


def train_step(model: EfficientNetLite, optimiser: torch.optim.Optimizer,
               images: torch.Tensor, labels: torch.Tensor, *, resolution: int,
               augment: AugmentConfig, generator: torch.Generator, lr: float,
               label_smoothing: float,
               autocast: AbstractContextManager[object] | None = None,
               teacher: Teacher | None = None) -> float:
    """Augment a batch of cached uint8 images, take one step at ``lr``; the batch's loss.

    The loss is computed in fp32 even when the forward pass runs under bf16 autocast.
    """
    x = normalise(augment_batch(images, resolution, augment, generator))
    x = x.contiguous(memory_format=torch.channels_last)
    for group in optimiser.param_groups:
        group["lr"] = lr
    with autocast or nullcontext():
        logits = model(x).float()
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if teacher is not None:
        loss = loss + teacher.weight * teacher.disagreement(x, logits, autocast)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return float(loss.item())
