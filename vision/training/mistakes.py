"""The cells a model gets wrong, and a contact sheet of them for an expert to look through.

A confusion matrix says how many; only the cells themselves say whether the model or the label
is at fault (a band neutrophil and a metamyelocyte differ by how deep the nucleus is indented).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from vision.data import Sample
from vision.labels import display_name

HEADER_HEIGHT = 36  # the title line above the tiles
CAPTION_HEIGHT = 40  # two caption lines under each tile


@dataclass(frozen=True)
class Mistake:
    path: Path
    true: str
    predicted: str
    confidence: float  # calibrated probability given to the predicted class

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "true": self.true, "predicted": self.predicted,
                "confidence": round(self.confidence, 4)}


def mistakes_of(samples: Sequence[Sample], probabilities: torch.Tensor,
                classes: Sequence[str]) -> list[Mistake]:
    """Every misclassified sample, the most confident mistakes first (they matter most)."""
    confidence, predicted = probabilities.max(dim=1)
    mistakes = [
        Mistake(sample.path, classes[sample.label], classes[int(guess)], float(p))
        for sample, guess, p in zip(samples, predicted, confidence, strict=True)
        if int(guess) != sample.label
    ]
    return sorted(mistakes, key=lambda m: (-m.confidence, str(m.path)))


def format_mistakes(mistakes: Sequence[Mistake], limit: int = 10) -> str:
    lines = [f"misclassified: {len(mistakes)}"]
    lines += [f"  {m.path}: {m.true} -> {m.predicted} ({m.confidence:.0%})"
              for m in mistakes[:limit]]
    if len(mistakes) > limit:
        lines.append(f"  ... and {len(mistakes) - limit} more (--json lists them all)")
    return "\n".join(lines)


def save_mistake_gallery(mistakes: Sequence[Mistake], path: Path, title: str,
                         tile: int = 192, columns: int = 6, limit: int = 60) -> int:
    """Write the first ``limit`` mistakes as captioned tiles; returns how many were drawn."""
    shown = list(mistakes[:limit])
    rows = max(1, -(-len(shown) // columns))
    height = HEADER_HEIGHT + rows * (tile + CAPTION_HEIGHT)
    sheet = Image.new("RGB", (columns * tile, height), "white")
    draw = ImageDraw.Draw(sheet)
    big, small = ImageFont.load_default(size=16), ImageFont.load_default(size=12)
    more = f" (the {len(shown)} most confident shown)" if len(mistakes) > len(shown) else ""
    draw.text((8, 9), f"{title}: {len(mistakes)} misclassified{more}", fill="black", font=big)
    if not shown:
        draw.text((8, HEADER_HEIGHT + 8), "no mistakes", fill="black", font=small)
    for index, mistake in enumerate(shown):
        x = (index % columns) * tile
        y = HEADER_HEIGHT + (index // columns) * (tile + CAPTION_HEIGHT)
        with Image.open(mistake.path) as image:
            sheet.paste(image.convert("RGB").resize((tile, tile)), (x, y))
        draw.text((x + 4, y + tile + 3), f"{display_name(mistake.true)} ->", fill="black",
                  font=small)
        draw.text((x + 4, y + tile + 20),
                  f"{display_name(mistake.predicted)} {mistake.confidence:.0%}",
                  fill="firebrick", font=small)
        draw.text((x + 3, y + 2), mistake.path.stem[:24], fill="black", font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return len(shown)
