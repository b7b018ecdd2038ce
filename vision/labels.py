"""The cell classes a model may name, and how people read them."""

from __future__ import annotations

# The eight classes of PBC (healthy donors, one analyser).
PBC_CLASSES: tuple[str, ...] = (
    "basophil", "eosinophil", "erythroblast", "ig",
    "lymphocyte", "monocyte", "neutrophil", "platelet",
)
# Cells of sick patients that a normal class must never hide: blasts (and promonocytes, a blast
# equivalent in acute myeloid leukaemia counts), smudge cells, reactive lymphocytes, plasma cells.
ABNORMAL_CLASSES: tuple[str, ...] = (
    "blast", "promonocyte", "smudge", "reactive_lymphocyte", "plasma_cell",
)
# Every label an expert may give and a model may learn, in a model's class order.
ALL_CLASSES: tuple[str, ...] = PBC_CLASSES + ABNORMAL_CLASSES

# The cells that raise the blast alert.
BLAST_LIKE: frozenset[str] = frozenset({"blast", "promonocyte"})
# Broken cells: counted beside the differential, never in it, as laboratories report them.
SMUDGE = "smudge"
# The mature normal white cells: the labels a blast must never hide behind.
MATURE_NORMAL: frozenset[str] = frozenset(
    {"neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"})

DISPLAY_NAMES: dict[str, str] = {
    "basophil": "Basophil",
    "eosinophil": "Eosinophil",
    "erythroblast": "Erythroblast",
    "ig": "Immature granulocyte",
    "lymphocyte": "Lymphocyte",
    "monocyte": "Monocyte",
    "neutrophil": "Neutrophil",
    "platelet": "Platelet",
    "blast": "Blast",
    "promonocyte": "Promonocyte",
    "smudge": "Smudge cell",
    "reactive_lymphocyte": "Reactive lymphocyte",
    "plasma_cell": "Plasma cell",
    "not_recognised": "Not recognised as a blood cell",
}


def display_name(label: str) -> str:
    return DISPLAY_NAMES.get(label, label.replace("_", " ").capitalize())


# The label of a cell the rejection step found unlike any class it knows.
NOT_RECOGNISED = "not_recognised"
# What an expert may call a cell: any class, or no blood cell at all (an artefact, stain
# debris), which takes it out of the counts and out of the classes' training.
EXPERT_LABELS: tuple[str, ...] = (*ALL_CLASSES, NOT_RECOGNISED)
ARTEFACT = "Artefact / not a cell"


def expert_name(label: str) -> str:
    """A label as an expert gave it: "not recognised" from an expert is their verdict that the
    object is no blood cell."""
    return ARTEFACT if label == NOT_RECOGNISED else display_name(label)
