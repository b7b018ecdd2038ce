"""One retraining job: fine-tune the active model, calibrate, evaluate against it, gate."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core import registry
from core.db.session import SessionFactory
from core.retraining.config import RetrainConfig
from core.retraining.dataset import (
    expert_tensors,
    learnable,
    load,
    per_class_sample,
    proportional_sample,
    readable_crops,
    split_held_out,
)
from core.retraining.gate import GateDecision, decide
from core.retraining.judging import cached_scores, counted, held_out_answers, scorecard
from core.reviews import expert_examples
from core.storage import ImageStore
from core.storage.models import ModelFiles
from vision.data import index_image_folder, subsample
from vision.model.artifact import ModelCard, load_artifact, save_artifact
from vision.model.classifier import CellClassifier
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.rejection import OodDetector, fit_detector
from vision.training.augment import AugmentConfig, cache_size_for
from vision.training.calibration import fit_temperature
from vision.training.finetune import freeze_norm_statistics, predict_features, predict_logits
from vision.training.step import train_step

# stage, details (epoch, step, loss, accuracy, eta_seconds...)
ProgressSink = Callable[[str, dict[str, Any]], None]
MIN_PER_CLASS_FOR_DETECTOR = 10


@dataclass(frozen=True)
class RetrainSetup:
    sessions: SessionFactory
    store: ImageStore
    models: ModelFiles  # the active version's weights on this host; new versions published
    models_dir: Path
    cache_dir: Path
    base_data: Path
    config: RetrainConfig


@dataclass(frozen=True)
class RetrainOutcome:
    version: str
    parent_version: str
    promoted: bool
    gate: GateDecision
    expert_examples: int
    replay_examples: int
    minutes: float
    history: list[dict[str, Any]]
    # Of the expert-labelled cells, how many each model gives its expert's label: whether the
    # corrections were learnt ("of", "candidate", "active").
    expert_cells: dict[str, int]
    laboratory: str | None = None  # a laboratory's own version: adapted to that group's cells
    adapted: str | None = None  # which part of the network an adaptation changed

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "parent_version": self.parent_version,
                "laboratory": self.laboratory,
                "promoted": self.promoted, "gate": self.gate.to_dict(),
                "expert_examples": self.expert_examples,
                "replay_examples": self.replay_examples, "minutes": self.minutes,
                "history": self.history, "expert_cells": self.expert_cells,
                "adapted": self.adapted}


def _train(model: EfficientNetLite, images: torch.Tensor, labels: torch.Tensor,
           val: tuple[torch.Tensor, torch.Tensor], config: RetrainConfig, crop: int,
           sink: ProgressSink) -> list[dict[str, Any]]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    steps = math.ceil(len(images) / config.batch_size)
    total = steps * config.epochs
    started = time.monotonic()
    history = []
    for epoch in range(config.epochs):
        model.train()
        # A few hundred images cannot re-estimate BatchNorm statistics better than the full run
        # did; keeping them fixed also makes a zero learning rate reproduce the parent exactly.
        freeze_norm_statistics(model)
        order = torch.randperm(len(images), generator=generator)
        loss_value = 0.0
        for step in range(steps):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            done = epoch * steps + step
            loss_value = train_step(
                model, optimiser, images[index], labels[index],
                resolution=config.resolution or crop, augment=AugmentConfig(),
                generator=generator,
                lr=config.lr * 0.5 * (1 + math.cos(math.pi * done / total)),  # cosine, whole job
                label_smoothing=config.label_smoothing)
            elapsed = time.monotonic() - started
            sink("training", {"epoch": epoch + 1, "epochs": config.epochs, "step": step + 1,
                              "steps": steps, "loss": round(loss_value, 4),
                              "eta_seconds": round(elapsed / (done + 1) * (total - done - 1))})
        model.eval()
        val_logits = predict_logits(model, val[0], crop)
        val_accuracy = float((val_logits.argmax(1) == val[1]).float().mean())
        history.append({"epoch": epoch + 1, "loss": round(loss_value, 4),
                        "val_accuracy": round(val_accuracy, 5)})
        sink("validated", {"epoch": epoch + 1, "epochs": config.epochs,
                           "val_accuracy": round(val_accuracy, 5),
                           "eta_seconds": round((time.monotonic() - started) / (epoch + 1)
                                                * (config.epochs - epoch - 1))})
    return history


def _agreeing(model: EfficientNetLite, images: torch.Tensor, labels: torch.Tensor,
              crop: int) -> int:
    if len(labels) == 0:
        return 0
    return int((predict_logits(model, images, crop).argmax(1) == labels).sum())


def _detector(model: EfficientNetLite, parent: OodDetector | None, images: torch.Tensor,
              labels: torch.Tensor, val_features: torch.Tensor,
              crop: int) -> OodDetector | None:
    # The base data may hold only some of the model's classes: those it holds must each have
    # enough cells.
    counts = torch.bincount(labels)
    if int(counts[counts > 0].min()) < MIN_PER_CLASS_FOR_DETECTOR or \
            int((counts > 0).sum()) < model.classifier.out_features:
        return parent  # too few cells per class to estimate class means and a covariance
    return fit_detector(predict_features(model, images, crop), labels,
                        val_features)


def run_retraining(setup: RetrainSetup, job_id: int, sink: ProgressSink) -> RetrainOutcome:
    started = time.monotonic()
    config = setup.config
    torch.manual_seed(config.seed)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    sink("preparing data", {})
    active = registry.active_model(setup.sessions)
    if active is None:
        raise RuntimeError("no active model to start from")
    parent, parent_card, parent_detector = load_artifact(setup.models.local_path(active))
    parent = parent.to(memory_format=torch.channels_last)
    # The candidate trains on a copy; the untouched parent is the gate's baseline.
    model = copy.deepcopy(parent)
    # The candidate is served like its parent, so it trains and is judged at the parent's crop.
    crop = parent_card.preprocess.crop
    size = cache_size_for(crop)

    classes = parent_card.classes
    crops, unreadable = readable_crops(learnable(expert_examples(setup.sessions), classes),
                                       setup.store)
    # Every fourth expert cell judges the candidate instead of teaching it.
    crops, held = split_held_out(crops)
    examples = [example for example, _crop in crops]
    expert_images, expert_labels = expert_tensors(crops, size, classes)
    quiet: Callable[[str], None] = lambda _message: None  # noqa: E731
    replay = (per_class_sample(setup.base_data / "train", classes, config.replay_per_class,
                               config.seed)
              if config.replay_fraction is None else
              proportional_sample(setup.base_data / "train", classes, config.replay_fraction,
                                  config.seed))
    replay_images, replay_labels = load(replay, setup.cache_dir, "replay", size, quiet)
    val_images, val_labels = load(
        per_class_sample(setup.base_data / "val", classes, config.val_per_class, config.seed),
        setup.cache_dir, "val", size, quiet)
    test = subsample(index_image_folder(setup.base_data / "test", classes),
                     config.test_limit, config.seed)
    test_images, test_labels = load(test, setup.cache_dir, "test", size, quiet)
    images = torch.cat([replay_images, *[expert_images] * config.expert_repeats])
    labels = torch.cat([replay_labels, *[expert_labels] * config.expert_repeats])
    sink("data ready", {"expert_examples": len(examples), "replay_examples": len(replay),
                        "test_images": len(test), "unreadable_photos": unreadable})

    history = _train(model, images, labels, (val_images, val_labels), config, crop, sink)

    sink("calibrating", {})
    # One pass over val serves both the temperature and the rejection threshold.
    val_features = predict_features(model, val_images, crop)
    with torch.no_grad():
        temperature = fit_temperature(model.classifier(val_features), val_labels)
    detector = _detector(model, parent_detector, replay_images, replay_labels, val_features,
                         crop)

    sink("evaluating", {"test_images": len(test), "held_out": len(held)})
    device = torch.device("cpu")
    judged = {"candidate": CellClassifier(
        model, parent_card.model_copy(update={"temperature": temperature}), device, detector),
        "active": CellClassifier(parent, parent_card, device, parent_detector)}
    held_crops, held_labels = [c for _e, c in held], [e.label for e, _c in held]
    figures = {name: scorecard(classifier,
                               *cached_scores(classifier, test_images, crop,
                                              counted(sink, f"the {name} model")),
                               test_labels,
                               held_out_answers(classifier, held_crops, held_labels) if held
                               else None)
               for name, classifier in judged.items()}
    candidate = figures["candidate"].test
    gate = decide(figures["candidate"], figures["active"], config.margins)
    expert_cells = {"of": len(examples),
                    "candidate": _agreeing(model, expert_images, expert_labels, crop),
                    "active": _agreeing(parent, expert_images, expert_labels, crop)}

    version = f"{parent_card.version.split('-rt')[0]}-rt{job_id}"
    minutes = round((time.monotonic() - started) / 60, 2)
    card = ModelCard(
        version=version, classes=list(classes), preprocessing=parent_card.preprocessing,
        sources=parent_card.sources, blast_review_above=parent_card.blast_review_above,
        temperature=temperature,
        metrics={"test": candidate.to_dict(),
                 "active_on_same_test": figures["active"].test.to_dict(),
                 "gate": gate.to_dict(), "expert_cells": expert_cells},
        data={"parent_version": parent_card.version, "expert_examples": len(examples),
              "replay_examples": len(replay), "base_data": str(setup.base_data),
              "test_images": len(test)},
        training={"kind": "retraining", "config": config.model_dump(mode="json"),
                  "history": history, "minutes": minutes},
    )
    path = setup.models_dir / f"{version}.safetensors"
    saved = save_artifact(model, card, path, detector)
    setup.models.publish(path)  # before the row that names it, so no host finds it missing
    registry.add_candidate(setup.sessions, saved, str(path), parent_card.version, gate.to_dict())
    if gate.passed:
        registry.promote(setup.sessions, version)
    return RetrainOutcome(version, parent_card.version, gate.passed, gate, len(examples),
                          len(replay), minutes, history, expert_cells)
