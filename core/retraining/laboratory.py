"""One laboratory's own version: the laboratory-wide model adapted to the group's expert cells.

The group's expert-labelled cells are split, oldest first, into cells to learn from and every
fourth cell held out. Candidates learn them: the head alone (``vision.training.adapt``, the
base classes replayed from their stored Gaussians; seconds) and, where the base data is at hand,
the network's last blocks too (``vision.training.tail``, 100 base cells a class replayed with
the base model's answers; minutes), mixed with the base at two strengths (``TAIL_MIXES``). Of
those that pass the retraining gate (``core.retraining.gate``: the base test set, and the
held-out cells against the version now serving the group), the one naming more held-out cells
right, less those named wrong at face value (``judging.preferred``), is the candidate (the head
on a tie); it becomes the group's active version; nobody else's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import torch
from PIL import Image

from core import registry
from core.retraining.dataset import learnable, readable_crops, split_held_out
from core.retraining.gate import decide
from core.retraining.judging import (
    counted,
    held_out_answers,
    image_scores,
    preferred,
    right_count,
    scorecard,
)
from core.retraining.run import ProgressSink, RetrainOutcome, RetrainSetup
from core.reviews import expert_examples
from vision.data import index_image_folder, subsample
from vision.model.artifact import ModelCard, load_artifact, save_artifact
from vision.model.classifier import CellClassifier
from vision.training.adapt import AdaptConfig, adapt_model
from vision.training.tail import TailConfig, adapt_tails, replay_cells

MIN_EXPERT_CELLS = 4


class NotEnoughCells(ValueError):
    pass


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:16] or "lab"


# The tail's weight-space mixes /adapt offers the gate, learnt once (``adapt_tails``). On LISC,
# 10 cells a class, one draw: 0.4 named 90.7% of the held-out cells with PBC val at 98.9%, 0.6
# 93.7% at 98.8% (base 99.1%; `python -m lab.tail_adapt --interpolate 0.4 0.6 0.8 1.0`): the
# further mix names a laboratory's cells better and may cost the base data the gate's margin,
# so both are judged and the gate and the held-out cells choose.
TAIL_MIXES = (0.4, 0.6)


def adapted_text(kind: str) -> str:
    """What an option's kind ("head", or "tail 0.6") changed, for the card and the admin."""
    if kind == "head":
        return "the head only (frozen features)"
    mix = kind.removeprefix("tail ")
    return (f"the last {TailConfig.blocks} blocks, head convolution and head, taken {mix} of "
            "the way from the base")


@dataclass(frozen=True)
class Adaptation:
    kind: str  # "head", or "tail MIX" (``adapted_text``)
    classifier: CellClassifier


def run_adaptation(setup: RetrainSetup, job_id: int, group_id: int, group_name: str,
                   sink: ProgressSink) -> RetrainOutcome:
    started = time.monotonic()
    sink("preparing data", {})
    base_ref = registry.active_model(setup.sessions)
    serving_ref = registry.active_model(setup.sessions, group_id)
    if base_ref is None or serving_ref is None:
        raise RuntimeError("no active model to adapt")
    model, card, detector = load_artifact(setup.models.local_path(base_ref))
    readable, unreadable = readable_crops(
        learnable(expert_examples(setup.sessions, group_id), card.classes), setup.store)
    examples = [example for example, _crop in readable]
    if len(examples) < MIN_EXPERT_CELLS:
        raise NotEnoughCells(f"{group_name} has {len(examples)} expert-labelled cell(s); an "
                             f"adaptation needs at least {MIN_EXPERT_CELLS} (review some first)")
    learn, held = split_held_out(examples)
    crops = {id(e): crop for e, crop in readable}
    if detector is None:
        raise RuntimeError(f"{base_ref.version} has no rejection step to replay its classes from")
    sink("adapting", {"expert_examples": len(learn), "held_out": len(held),
                      "unreadable_photos": unreadable})
    learn_crops = [crops[id(e)] for e in learn]
    learn_labels = [card.classes.index(e.label) for e in learn]

    def progress(line: str) -> None:
        sink("adapting", {"detail": line.strip()})

    device = torch.device("cpu")
    head = adapt_model(model, detector, card.classes, card.preprocess, card.temperature,
                       learn_crops, learn_labels, AdaptConfig(), progress)
    options = [Adaptation("head", CellClassifier(
        head.model, card.model_copy(update={"temperature": head.temperature}), device,
        head.detector))]
    base_cells = replay_cells(setup.base_data / "train", card.classes, setup.config.seed)
    if base_cells:
        progress("the network's last blocks, beside the head")
        tails = adapt_tails(model, learn_crops, torch.tensor(learn_labels),
                            [image for image, _ in base_cells],
                            torch.tensor([label for _, label in base_cells]), card.preprocess,
                            TailConfig.scaled(len(learn)), progress, card.temperature,
                            TAIL_MIXES)
        options += [Adaptation(f"tail {mix:g}", CellClassifier(
            tail.model, card.model_copy(update={"temperature": tail.temperature}), device,
            tail.detector)) for mix, tail in tails.items()]

    sink("evaluating", {"detail": f"{len(held)} held-out cells"})
    held_crops, held_labels = [crops[id(e)] for e in held], [e.label for e in held]
    answered = {option.kind: held_out_answers(option.classifier, held_crops, held_labels)
                for option in options}
    scores = {kind: right_count(answers) for kind, answers in answered.items()}
    serving = CellClassifier.from_artifact(setup.models.local_path(serving_ref), "cpu")
    serving_answers = held_out_answers(serving, held_crops, held_labels)
    test = subsample(index_image_folder(setup.base_data / "test", card.classes),
                     setup.config.test_limit, setup.config.seed)
    test_images = []
    for sample in test:
        with Image.open(sample.path) as image:
            test_images.append(image.convert("RGB"))
    labels = torch.tensor([s.label for s in test])
    base = CellClassifier(model, card, device, detector)
    # The base test set against the laboratory-wide model the candidate was adapted from; the
    # held-out cells against the version serving the laboratory now.
    active = scorecard(
        base, *image_scores(base, test_images, counted(sink, "the base model")), labels,
        serving_answers)
    gates = {}
    for option in options:
        scores_of = image_scores(option.classifier, test_images,
                                 counted(sink, f"the {option.kind} adaptation"))
        gates[option.kind] = decide(
            scorecard(option.classifier, *scores_of, labels, answered[option.kind]), active,
            setup.config.margins)
    # Only what passes serves; the head alone on a tie (the fast path).
    kind = preferred({k: gate.passed for k, gate in gates.items()}, answered, fast="head")
    chosen = next(option for option in options if option.kind == kind)
    candidate, gate = chosen.classifier, gates[chosen.kind]
    expert_cells = {"of": len(held), "candidate": scores[chosen.kind],
                    "active": right_count(serving_answers)}
    # The laboratory's trust in the candidate starts from these (``core.laboratory``).
    answers = answered[chosen.kind]

    version = f"{card.version.split('-rt')[0]}-{_slug(group_name)}-a{job_id}"
    minutes = round((time.monotonic() - started) / 60, 2)
    new_card = ModelCard(
        version=version, architecture=card.architecture, classes=card.classes,
        sources=card.sources, blast_review_above=card.blast_review_above,
        preprocessing=card.preprocessing, temperature=candidate.card.temperature,
        metrics={"test": {"accuracy": gate.candidate_accuracy, "images": len(test)},
                 "gate": gate.to_dict(), "expert_cells": {**expert_cells, "answers": answers}},
        data={"parent_version": card.version, "laboratory": group_name,
              "expert_examples": len(learn), "held_out": len(held),
              "cells_per_class": head.per_class, "test_images": len(test)},
        training={"kind": "laboratory adaptation", "minutes": minutes,
                  # Which part of the network learnt, chosen on the held-out cells.
                  "adapted": adapted_text(chosen.kind), "held_out_right": scores},
        attribution=card.attribution)
    path = setup.models_dir / f"{version}.safetensors"
    saved = save_artifact(candidate.model, new_card, path, candidate.detector)
    setup.models.publish(path)
    registry.add_candidate(setup.sessions, saved, str(path), card.version, gate.to_dict(),
                           group_id)
    if gate.passed:
        registry.promote(setup.sessions, version)
    return RetrainOutcome(version, card.version, gate.passed, gate, len(learn), 0, minutes, [],
                          expert_cells, laboratory=group_name,
                          adapted=f"{adapted_text(chosen.kind)}; held-out cells right: "
                                  + ", ".join(f"{kind} {right}" for kind, right in scores.items()))
