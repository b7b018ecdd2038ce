"""Training recipe: a JSON file overrides any of these defaults (``--config FILE``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from vision.labels import ALL_CLASSES, PBC_CLASSES
from vision.model.artifact import PBC_SOURCE, DataSource
from vision.model.efficientnet_lite import stages_of
from vision.training.augment import AugmentConfig


class Phase(BaseModel):
    """A run of epochs at one resolution with one learning-rate schedule."""

    epochs: int
    resolution: int
    lr: float
    frozen_blocks: int = 0  # the stem and this many first blocks stay fixed
    warmup_steps: int = 0


class ExtraSource(BaseModel):
    """Another laboratory's labelled cells (an image folder, any subset of the classes) trained
    on beside the main data set's train split, each image ``repeat`` times an epoch."""

    root: Path
    repeat: int = 1


class TrainConfig(BaseModel):
    version: str = "pbc-lite0-ft-v3"
    # The labels the model names, in its output order (folder names of the data set). A model
    # started from another (``init_from``) whose classes come first keeps their head rows.
    classes: list[str] = Field(default_factory=lambda: list(PBC_CLASSES))
    # What the model learns from (written on its card; shown by /models).
    sources: list[DataSource] = Field(default_factory=lambda: [PBC_SOURCE])
    # The network: efficientnet_lite0, or lite1 / lite2 (their ImageNet weights: the ``larger``
    # extra). Ignored in favour of the model's own when ``init_from`` is set, which must agree.
    architecture: str = "efficientnet_lite0"
    # Most epochs at low resolution are cheap on a CPU; the last ones at serving resolution
    # adapt the network (and BatchNorm statistics) to the size it will see; PBC val accuracy
    # kept rising through four of them.
    phases: list[Phase] = Field(default_factory=lambda: [
        Phase(epochs=1, resolution=128, lr=2e-3, frozen_blocks=8, warmup_steps=50),
        Phase(epochs=4, resolution=160, lr=1e-3, warmup_steps=30),
        Phase(epochs=4, resolution=224, lr=3e-4, warmup_steps=30),
    ])
    batch_size: int = 32
    weight_decay: float = 0.02
    label_smoothing: float = 0.1
    dropout: float = 0.2
    drop_path: float = 0.1
    threads: int = 2
    # On the CPU, forward and backward passes under bf16 autocast (weights and optimiser stay
    # fp32). Where the CPU has AVX-512 BF16 (the dev machine's EPYC in November 2026) a training
    # step runs 1.5-2.3x as fast (benchmarks.architecture_speed --recipe); where it has not
    # (AVX2 only, as on 2026-12-04) bf16 is emulated: 25 steps took over 5.5 minutes, not 2.
    # On CUDA they always do.
    cpu_bf16: bool = False
    # The centre crop the model is served at (the cache and the card's preprocessing follow it).
    serving_resolution: int = 224
    # Start from this model's weights (its card's SHA-256 checked) instead of ImageNet.
    init_from: Path | None = None
    # More than one laboratory: a model that has seen one stain and camera only learns them.
    extra_train: list[ExtraSource] = Field(default_factory=list)
    # BatchNorm keeps the running statistics the network starts with (ImageNet's, or the init
    # model's) instead of re-learning them from this data set: statistics learnt on one
    # laboratory are what fails on another (Tsutsui et al. 2023).
    frozen_norm_statistics: bool = False
    # Learning without forgetting (Li and Hoiem 2016): a model that already names some of the
    # classes (its own come first in ``classes``) teaches its answers over them on every
    # augmented training image, so that learning new classes from one laboratory does not move
    # what the network says about the old ones elsewhere (other laboratories' normal cells).
    distil_from: Path | None = None
    distil_weight: float = 1.0
    distil_temperature: float = 2.0
    # The share of the main train split drawn (afresh) each epoch; extra sources come in full.
    # Lets a small extra source be seen for more epochs in the same time.
    base_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # The test split under simulated corruptions, written on the card: a pass over the test
    # split for each of twelve corruptions (about 20 minutes at 288 px on two cores).
    robustness_benchmark: bool = True
    seed: int = 0
    max_train: int | None = None  # cap per split, for smoke runs
    max_eval: int | None = None

    @field_validator("classes")
    @classmethod
    def _labels(cls, classes: list[str]) -> list[str]:
        unknown = sorted(set(classes) - set(ALL_CLASSES))
        if unknown or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct labels of {ALL_CLASSES}; got {classes}")
        return classes

    @field_validator("architecture")
    @classmethod
    def _known(cls, architecture: str) -> str:
        # Refused when the recipe is read, not after the caches are built.
        stages_of(architecture)
        return architecture

    @classmethod
    def from_file(cls, path: Path | None) -> TrainConfig:
        return cls() if path is None else cls.model_validate_json(path.read_text())
