"""The eight PBC cell classes and how people read them."""

from __future__ import annotations

PBC_CLASSES: tuple[str, ...] = (
    "basophil", "eosinophil", "erythroblast", "ig",
    "lymphocyte", "monocyte", "neutrophil", "platelet",
)

DISPLAY_NAMES: dict[str, str] = {
    "basophil": "Basophil",
    "eosinophil": "Eosinophil",
    "erythroblast": "Erythroblast",
    "ig": "Immature granulocyte",
    "lymphocyte": "Lymphocyte",
    "monocyte": "Monocyte",
    "neutrophil": "Neutrophil",
    "platelet": "Platelet",
    "not_recognised": "Not recognised as a blood cell",
}


def display_name(label: str) -> str:
    return DISPLAY_NAMES.get(label, label.replace("_", " ").capitalize())


# The label of a cell the rejection step found unlike any class it knows.
NOT_RECOGNISED = "not_recognised"
