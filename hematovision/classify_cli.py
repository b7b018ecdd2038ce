"""``hematovision classify``: classify image files locally, no services needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.intake import IntakeError, open_image
from core.labels import display_name
from core.model.artifact import ModelIntegrityError
from core.model.classifier import CellClassifier, CellPrediction
from core.settings import Settings


def cell_json(cell: CellPrediction) -> dict[str, object]:
    return {
        "label": cell.label,
        "confidence": round(cell.confidence, 6),
        "top3": [{"label": s.label, "confidence": round(s.confidence, 6)} for s in cell.top3],
        "box": list(cell.box),
    }


def run_classify(settings: Settings, images: list[Path], as_json: bool,
                 model_path: Path | None = None) -> int:
    try:
        classifier = CellClassifier.from_artifact(model_path or settings.model_path,
                                                  settings.device)
    except (ModelIntegrityError, FileNotFoundError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in images:
        try:
            data = path.read_bytes()
            clean = open_image(data, max_pixels=settings.max_image_pixels,
                               max_bytes=settings.max_upload_bytes)
        except (OSError, IntakeError) as exc:
            failures += 1
            reason = exc.user_message if isinstance(exc, IntakeError) else exc.strerror or str(exc)
            print(f"error: {path}: {reason}", file=sys.stderr)
            if as_json:
                print(json.dumps({"image": str(path), "error": reason}))
            continue
        cells = classifier.classify_image(clean.image)
        if as_json:
            print(json.dumps({"image": str(path), "model": classifier.version,
                              "cells": [cell_json(c) for c in cells]}))
        else:
            for cell in cells:
                alternatives = ", ".join(
                    f"{display_name(s.label)} {s.confidence:.1%}" for s in cell.top3[1:])
                print(f"{path}: {display_name(cell.label)} {cell.confidence:.1%}"
                      f"  (next: {alternatives})")
    return 1 if failures else 0
