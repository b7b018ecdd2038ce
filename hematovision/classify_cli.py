"""``hematovision classify``: analyse image files locally, no services needed."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from core.intake import IntakeError, open_image
from core.settings import Settings
from core.trust import NEW_LABORATORY, Trust
from core.trust import apply as apply_trust
from vision.field.analyse import analyse_many
from vision.field.annotate import annotate
from vision.field.learned_red_cells import load_red_cell_finder
from vision.field.results import Analysis, platelet_text, reasons_in_words
from vision.findings import findings
from vision.labels import display_name
from vision.model.artifact import ModelIntegrityError
from vision.model.classifier import CellClassifier


def _summary(path: Path, analysis: Analysis) -> list[str]:
    if analysis.rejected and analysis.quality:
        return [f"{path}: not analysed: {analysis.quality.message}"]
    lines = []
    if alert := findings(c.label for c in analysis.classified).alert():
        lines.append(f"{path}: {alert}")
    if analysis.mode == "field":
        lines.append(f"{path}: field, {len(analysis.classified)} white cell(s), "
                     f"{analysis.rbc_count} red cells, platelets "
                     f"{platelet_text(analysis.platelet_count)}")
    for number, cell in enumerate(analysis.classified, start=1):
        alternatives = ", ".join(f"{display_name(s.label)} {s.confidence:.1%}"
                                 for s in cell.top3[1:])
        prefix = f"  {number}. " if analysis.mode == "field" else f"{path}: "
        why = ", ".join(reasons_in_words(cell.reasons))
        review = (f"  [review: {why}]" if why else "  [review]") if cell.review else ""
        lines.append(f"{prefix}{display_name(cell.label or '')} {cell.confidence or 0:.1%}"
                     f"  (next: {alternatives}){review}")
    if analysis.differential:
        lines.append("  differential: " + ", ".join(
            f"{display_name(r.label)} {r.count} ({r.percent:.0f}%)" for r in analysis.differential))
    return lines


def _as_json(path: Path, analysis: Analysis) -> dict[str, object]:
    data = analysis.to_dict()
    cells = data.pop("cells")
    assert isinstance(cells, list)
    return {"image": str(path), **data,
            "cells": [c for c in cells if c["label"] is not None],
            "other_cells": [{k: c[k] for k in ("kind", "box", "at_border")}
                            for c in cells if c["label"] is None]}


def _trust(calibration: Path | None, version: str) -> Trust:
    """The laboratory's trust from a calibration file, for the version it was measured on."""
    if calibration is None:
        return NEW_LABORATORY
    data = json.loads(calibration.read_text())
    if data.get("version") != version:
        raise ValueError(f"{calibration} was measured on {data.get('version')}, not {version}")
    return Trust.from_dict(data["trust"])


# Photos analysed together, their cells classified in one pass (``analyse_many``): up to 16,
# or fewer whose pixels stay within a few phone photos' worth of memory.
CHUNK = 16
CHUNK_PIXELS = 50_000_000
Opened = tuple[Path, Image.Image | str]  # an image, or why it could not be read


def _opened(path: Path, settings: Settings) -> Opened:
    try:
        return path, open_image(path.read_bytes(), max_pixels=settings.max_image_pixels,
                                max_bytes=settings.max_upload_bytes).image
    except (OSError, IntakeError) as exc:
        return path, (exc.user_message if isinstance(exc, IntakeError)
                      else exc.strerror or str(exc))


def _chunks(images: list[Path], settings: Settings) -> Iterator[list[Opened]]:
    chunk: list[Opened] = []
    pixels = 0
    for path in images:
        opened = _opened(path, settings)
        if isinstance(opened[1], Image.Image):
            pixels += opened[1].width * opened[1].height
        chunk.append(opened)
        if len(chunk) == CHUNK or pixels >= CHUNK_PIXELS:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk


def run_classify(settings: Settings, images: list[Path], as_json: bool,
                 model_path: Path | None = None, annotate_dir: Path | None = None,
                 calibration: Path | None = None) -> int:
    try:
        # Eager, not TorchScript as the workers run it: freezing costs seconds at every start
        # and gains a few milliseconds a cell, paid back only after hundreds of cells.
        classifier = CellClassifier.from_artifact(model_path or settings.model_path,
                                                  settings.device, settings.bf16_first,
                                                  settings.screen_model_path)
        red_cells = load_red_cell_finder(settings.red_cell_model_path)
    except (ModelIntegrityError, FileNotFoundError) as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    try:
        trust = _trust(calibration, classifier.card.version)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot use the calibration: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for opened in _chunks(images, settings):
        readable = [image for _, image in opened if isinstance(image, Image.Image)]
        analyses = iter(analyse_many(readable, classifier, red_cells=red_cells,
                                     threads=os.cpu_count() or 1))
        for path, image in opened:
            if isinstance(image, str):
                failures += 1
                print(f"error: {path}: {image}", file=sys.stderr)
                if as_json:
                    print(json.dumps({"image": str(path), "error": image}))
                continue
            analysis = apply_trust(next(analyses), trust)
            if annotate_dir is not None and not analysis.rejected:
                annotate_dir.mkdir(parents=True, exist_ok=True)
                annotate(image, analysis).save(annotate_dir / f"{path.stem}.annotated.png")
            if as_json:
                print(json.dumps(_as_json(path, analysis)))
            else:
                print("\n".join(_summary(path, analysis)))
    if not as_json:
        print(trust.line())
    return 1 if failures else 0
