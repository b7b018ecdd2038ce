"""Temperature scaling (Guo et al. 2017), fitted on held-out logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, y_true: torch.Tensor) -> float:
    """The single temperature T minimising validation NLL of softmax(logits / T)."""
    log_t = torch.zeros((), requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y_true)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())
