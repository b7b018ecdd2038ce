"""The annotated picture: boxes coloured by class, labels, a legend and the differential."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from vision.field.results import (
    CLASSIFIED_KINDS,
    REVIEW_REASONS_SHORT,
    TRUST_REASONS,
    Analysis,
    Cell,
    confidence_text,
    flagged_by_model,
    in_clinical_order,
    platelet_text,
)
from vision.labels import display_name, expert_name

COLOURS = {
    "neutrophil": (31, 119, 180), "lymphocyte": (44, 160, 44), "monocyte": (148, 103, 189),
    "eosinophil": (255, 127, 14), "basophil": (140, 86, 75), "ig": (227, 119, 194),
    "erythroblast": (188, 189, 34), "platelet": (23, 190, 207), "not_recognised": (90, 90, 90),
    "rbc": (214, 39, 40),
    # The abnormal classes: dark, so that a blast's box stands out on any stain.
    "blast": (0, 0, 0), "promonocyte": (70, 70, 70), "smudge": (170, 170, 170),
    "reactive_lymphocyte": (0, 128, 128), "plasma_cell": (128, 0, 0),
}
PANEL = 330
MAX_SIDE = 1100


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def legend_keys(analysis: Analysis) -> list[str]:
    """What the picture shows, in clinical order: only the classes present, then red cells and
    platelets where any were marked."""
    present = {cell.label for cell in analysis.classified if cell.label}
    keys = [label for label, _count in in_clinical_order(dict.fromkeys(present, 0))]
    return keys + [kind for kind in ("rbc", "platelet")
                   if any(cell.kind == kind for cell in analysis.cells)]


def _label_text(number: int, cell: Cell, own_doubt: bool) -> str:
    """A marked cell's label: an expert's as such, else the bot's with its confidence and,
    flagged, why."""
    if cell.reviewed:
        return f"{number} {expert_name(cell.label or '')} (expert)"
    text = (f"{number} {display_name(cell.label or '')} "
            f"{confidence_text(cell.confidence, cell.reasons, digits=0)}")
    if own_doubt:
        why = [REVIEW_REASONS_SHORT[r] for r in cell.reasons
               if r in REVIEW_REASONS_SHORT and r not in TRUST_REASONS]
        return text + f" (review{': ' + ', '.join(why) if why else ''})"
    return text + " (confirm)" if cell.review else text  # confirm: only the laboratory's trust


def annotate(image: Image.Image, analysis: Analysis, caption: str = "") -> Image.Image:
    """The photo with every cell marked, beside a panel of the counts and the legend;
    ``caption`` (the case and the time) under the title."""
    scale = min(1.0, MAX_SIDE / max(image.size))
    photo = image.convert("RGB").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    canvas = Image.new("RGB", (photo.width + PANEL, max(photo.height, 520)), "white")
    canvas.paste(photo, (0, 0))
    draw = ImageDraw.Draw(canvas)
    small, normal, large = _font(12), _font(15), _font(18)

    def scaled(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return tuple(round(v * scale) for v in box)  # type: ignore[return-value]

    for cell in analysis.cells:
        if cell.kind == "rbc":
            draw.ellipse(scaled(cell.box), outline=COLOURS["rbc"], width=1)
        elif cell.kind == "platelet":
            draw.rectangle(scaled(cell.box), outline=COLOURS["platelet"], width=2)
    for number, cell in enumerate(analysis.classified, start=1):
        colour = COLOURS.get(cell.label or "", (0, 0, 0))
        box = scaled(cell.box)
        own_doubt = flagged_by_model(cell.review, cell.reasons)
        draw.rectangle(box, outline=colour, width=2 if own_doubt else 4)
        text = _label_text(number, cell, own_doubt)
        tx, ty = box[0] + 2, max(0, box[1] - 18)
        bounds = draw.textbbox((tx, ty), text, font=normal)
        draw.rectangle(bounds, fill=colour)
        draw.text((tx, ty), text, fill="white", font=normal)

    x, y = photo.width + 16, 14
    draw.text((x, y), "HematoVision", fill="black", font=large)
    y += 24
    if caption:
        draw.text((x, y), caption, fill="black", font=small)
        y += 18
    y += 4
    wbc = [c for c in analysis.cells if c.kind in CLASSIFIED_KINDS]
    draw.text((x, y), f"white cells {len(wbc)}   red cells {analysis.rbc_count}   "
                      f"platelets {platelet_text(analysis.platelet_count)}", fill="black",
              font=small)
    y += 26
    draw.text((x, y), "Differential", fill="black", font=normal)
    y += 22
    for row in analysis.differential:
        colour = COLOURS.get(row.label, (0, 0, 0))
        draw.text((x, y), f"{display_name(row.label)}", fill="black", font=small)
        bar = round((PANEL - 40) * row.percent / 100)
        draw.rectangle((x, y + 15, x + max(bar, 2), y + 25), fill=colour)
        draw.text((x + min(bar, PANEL - 110) + 6, y + 12), f"{row.count} ({row.percent:.0f}%)",
                  fill="black", font=small)
        y += 34
    if not analysis.differential:
        draw.text((x, y), "no white cell classified", fill="grey", font=small)
        y += 20
    y += 10
    draw.text((x, y), "Legend", fill="black", font=normal)
    y += 22
    for key in legend_keys(analysis):
        draw.rectangle((x, y + 2, x + 12, y + 12), fill=COLOURS[key])
        reviewed = any(c.reviewed and c.label == key for c in analysis.cells)
        name = ("Red cell" if key == "rbc" else expert_name(key) if reviewed
                else display_name(key))
        draw.text((x + 18, y), name, fill="black", font=small)
        y += 17
    y += 8
    draw.text((x, y), f"model {analysis.model}", fill="grey", font=small)
    if analysis.red_cell_model:
        draw.text((x, y + 17), f"red cells {analysis.red_cell_model}", fill="grey", font=small)
    draw.text((x, canvas.height - 34), "Decision support only,\nnot a diagnosis.",
              fill=(160, 0, 0), font=small)
    return canvas
