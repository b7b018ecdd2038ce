"""Reading the BCCD data set (Pascal VOC boxes) for development and benchmarks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

KINDS = {"WBC": "wbc", "RBC": "rbc", "Platelets": "platelet"}


@dataclass(frozen=True)
class Annotated:
    image: Path
    boxes: dict[str, list[tuple[int, int, int, int]]]  # kind -> boxes


def read_split(root: Path, split: str) -> list[Annotated]:
    names = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    return [read_one(root, name) for name in names]


def read_one(root: Path, name: str) -> Annotated:
    boxes: dict[str, list[tuple[int, int, int, int]]] = {k: [] for k in KINDS.values()}
    for obj in ET.parse(root / "Annotations" / f"{name}.xml").findall("object"):
        kind = KINDS[(obj.findtext("name") or "").strip()]
        box = obj.find("bndbox")
        assert box is not None
        x0, y0, x1, y1 = (int(float(box.findtext(k) or 0)) for k in
                          ("xmin", "ymin", "xmax", "ymax"))
        boxes[kind].append((x0, y0, x1, y1))
    return Annotated(root / "JPEGImages" / f"{name}.jpg", boxes)
