"""``hematovision adapt``: a model adapted to one laboratory from a folder of its labelled cells."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import torch
from PIL import Image

from vision.data import Sample, UnknownClassError, index_image_folder
from vision.field.analyse import framed_cell
from vision.model.artifact import ModelCard, ModelIntegrityError, load_artifact, save_artifact
from vision.model.classifier import CellClassifier
from vision.training.adapt import SOURCE_CONFIG, AdaptConfig, adapt_model, embed_base_cells
from vision.training.metrics import classification_report
from vision.training.tail import TailConfig, adapt_tail, replay_cells


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _images(samples: list[Sample], framing: str) -> list[Image.Image]:
    """The labelled cells as the adaptation sees them. "path" frames each as the analysis path
    frames a close-up's cell for the classifier (``framed_cell``): the laboratory's model learns
    its cells as the bot and the worker will show them, whatever the laboratory's own cropping.
    "as-given" takes each image whole, as ``hematovision evaluate`` does."""
    images = []
    for sample in samples:
        with Image.open(sample.path) as image:
            rgb = image.convert("RGB")
            images.append(framed_cell(rgb) if framing == "path" else rgb)
    return images


def _accuracy(model_path: Path, cells: list[Image.Image], labels: torch.Tensor) -> float:
    classifier = CellClassifier.from_artifact(model_path, "cpu")
    probabilities = classifier.probabilities(cells)
    return classification_report(probabilities, labels, classifier.card.classes).accuracy


def run_adapt(base_path: Path, examples: Path, out: Path, version: str | None,
              check: Path | None, base_cells: Path | None = None,
              framing: str = "path", zoom: float = 1.0, replay: Path | None = None) -> int:
    if zoom < 1:
        print(f"error: --zoom must be at least 1 (got {zoom})", file=sys.stderr)
        return 2
    if replay is not None and (base_cells is not None or zoom > 1):
        print("error: --replay (the network's tail) goes with neither --base-cells nor --zoom",
              file=sys.stderr)
        return 2
    try:
        model, card, detector = load_artifact(base_path)
        samples = index_image_folder(examples, card.classes)
        held_out = index_image_folder(check, card.classes) if check else []
        base_samples = index_image_folder(base_cells, card.classes) if base_cells else []
    except (UnknownClassError, FileNotFoundError, ModelIntegrityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not samples:
        print(f"error: no labelled cells under {examples}", file=sys.stderr)
        return 2
    if detector is None:
        print(f"error: {base_path} has no rejection step to replay its classes from",
              file=sys.stderr)
        return 2
    config = replace(SOURCE_CONFIG if base_samples else AdaptConfig(), zoom=zoom)
    started = datetime.now(UTC)
    images, cell_labels = _images(samples, framing), [s.label for s in samples]
    per_class = {card.classes[c]: cell_labels.count(c) for c in sorted(set(cell_labels))}
    if replay is not None:
        replayed = replay_cells(replay, card.classes, 0)
        if not replayed:
            print(f"error: {replay} holds no cells of some of {', '.join(card.classes)}",
                  file=sys.stderr)
            return 2
        tail_config = TailConfig.scaled(len(samples))
        tail = adapt_tail(model, images, torch.tensor(cell_labels), [i for i, _ in replayed],
                          torch.tensor([label for _, label in replayed]), card.preprocess,
                          tail_config, _progress, card.temperature)
        adapted_model, adapted_detector, temperature = tail.model, tail.detector, \
            tail.temperature
        recipe = {"network": "tail", "tail": asdict(tail_config), "replay": str(replay),
                  "replay_cells": len(replayed)}
    else:
        base_features = None
        if base_samples:
            _progress(f"embedding {len(base_samples)} of the base model's cells to distil")
            base_features = embed_base_cells(model, base_samples, card.preprocess, config,
                                             _progress)
        adapted = adapt_model(model, detector, card.classes, card.preprocess, card.temperature,
                              images, cell_labels, config, _progress, base_features)
        adapted_model, adapted_detector, temperature = adapted.model, adapted.detector, \
            adapted.temperature
        recipe = {"network": "head", "adapt": asdict(config)}
    version = version or f"{card.version}-adapted-{started:%Y%m%d%H%M}"
    new_card = ModelCard(
        version=version, architecture=card.architecture, classes=card.classes,
        preprocessing=card.preprocessing, temperature=temperature,
        data={"adapted_from": card.version, "examples": str(examples), "framing": framing,
              "cells": len(samples), "cells_per_class": per_class,
              **({"base_cells": str(base_cells), "base_cells_count": len(base_samples)}
                 if base_samples else {})},
        training={**recipe,
                  "seconds": round((datetime.now(UTC) - started).total_seconds(), 1)},
        attribution=card.attribution,
    )
    path = out / f"{version}.safetensors"
    saved = save_artifact(adapted_model, new_card, path, adapted_detector)
    print(f"adapted model written to {path} ({len(samples)} cells: "
          + ", ".join(f"{label} {n}" for label, n in per_class.items()) + ")")
    if held_out:
        # Read and framed once for both models: framing a cell measures its scale anew.
        cells, labels = _images(held_out, framing), torch.tensor([s.label for s in held_out])
        before, after = _accuracy(base_path, cells, labels), _accuracy(path, cells, labels)
        saved = save_artifact(adapted_model, saved.model_copy(update={"metrics": {
            "held_out": {"cells": len(held_out), "accuracy_before": round(before, 5),
                         "accuracy_after": round(after, 5), "folder": str(check)}}}),
            path, adapted_detector)
        print(f"held-out cells ({len(held_out)}): accuracy {before:.1%} -> {after:.1%}")
    return 0
