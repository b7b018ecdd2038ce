"""The retraining recipe; a JSON file (``HV_RETRAIN_CONFIG``) overrides any default."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from core.retraining.gate import Margins


class RetrainConfig(BaseModel):
    # Base data in ImageFolder layout with train/val/test; None means the settings' data set.
    base_data: Path | None = None
    # Replaying a sample of the original training data keeps the model from forgetting the
    # classes no one corrected (the corrections alone would pull every prediction their way).
    # This share of every class, so the replay keeps the base data's class proportions: a
    # balanced replay shifts the priors the parent learnt, and with them the boundaries between
    # neighbouring classes (neutrophil and immature granulocyte above all). None: replay
    # ``replay_per_class`` of each class instead.
    replay_fraction: float | None = 0.1
    replay_per_class: int = 120
    val_per_class: int = 40
    test_limit: int | None = None  # the whole test split by default: the gate must be fair
    expert_repeats: int = 3  # each expert-labelled cell is seen this many times per epoch
    epochs: int = 2
    resolution: int | None = None  # training crop; None: the active model's serving crop
    # Gentle: with nothing new to learn, two epochs at 5e-5 moved v5 half a point on test.
    lr: float = 2e-5
    batch_size: int = 32
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    # The gate: promoted only if overall accuracy and every class's recall are not worse than
    # the active model's beyond these margins, on the same test images.
    overall_margin: float = 0.002
    class_margin: float = 0.02
    # ... and only if it flags no more of the cells for review than the active model, beyond
    # this share (one test cell in a hundred; on a laboratory's held-out cells, as many).
    flag_margin: float = 0.01
    threads: int = 2
    seed: int = 0

    @property
    def margins(self) -> Margins:
        return Margins(self.overall_margin, self.class_margin, self.flag_margin)

    @classmethod
    def from_file(cls, path: Path | None) -> RetrainConfig:
        return cls() if path is None else cls.model_validate_json(path.read_text())
