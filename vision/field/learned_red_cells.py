"""Red cells found by the centre network, as detections of the field analysis."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from vision.field.centre_net import (
    NET_SCALE,
    CentreNet,
    at_net_scale,
    decode,
    load_centre_net,
    to_input,
)
from vision.field.detect import Detection, FieldMasks, RedCellFinder, contains, touches_border


@dataclass(frozen=True)
class Outputs:
    """The network's heatmap logits and log sizes for one field, and its half-scale shape."""

    heatmap: torch.Tensor
    size: torch.Tensor
    shape: tuple[int, int]


@dataclass(frozen=True)
class LearnedRedCells:
    """Finds red cells with a trained ``CentreNet``; called like the colour rule's finder."""

    net: CentreNet
    threshold: float
    version: str

    @classmethod
    def load(cls, path: Path) -> LearnedRedCells:
        net, card = load_centre_net(path)
        # Channels-last runs its convolutions about a fifth faster on a CPU, to float rounding.
        net = net.to(memory_format=torch.channels_last)
        return cls(net, float(card["threshold"]), str(card["version"]))  # type: ignore[arg-type]

    def __call__(self, masks: FieldMasks, white: list[Detection]) -> list[Detection]:
        return self.cells(masks, white, self.outputs(masks), self.threshold)

    def outputs_ahead(self, masks: FieldMasks) -> Future[Outputs]:
        """``outputs`` of ``masks``, computed in a thread of their own while the caller goes on
        (torch lets go of the interpreter)."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="red-cell-network")
        try:
            return pool.submit(self.outputs, masks)
        finally:
            pool.shutdown(wait=False)

    def outputs(self, masks: FieldMasks) -> Outputs:
        half = at_net_scale(masks.balanced)
        with torch.inference_mode():
            heatmap, size = self.net(to_input(half).contiguous(memory_format=torch.channels_last))
        return Outputs(heatmap[0], size[0], half.shape[:2])

    @staticmethod
    def cells(masks: FieldMasks, white: list[Detection], outputs: Outputs,
              threshold: float) -> list[Detection]:
        """The red cells of the network's ``outputs`` at ``threshold``, in working pixels."""
        height, width = masks.valid.shape
        found = []
        for centre in decode(outputs.heatmap, outputs.size, threshold, outputs.shape):
            x, y = centre.x / NET_SCALE, centre.y / NET_SCALE
            col, row = min(int(x), width - 1), min(int(y), height - 1)
            # The vignette and the white cells are not red cells, whatever the network thinks.
            if not masks.valid[row, col] or any(contains(w.box, x, y) for w in white):
                continue
            half_w, half_h = centre.width / NET_SCALE / 2, centre.height / NET_SCALE / 2
            box = (max(0, round(x - half_w)), max(0, round(y - half_h)),
                   min(width, round(x + half_w)), min(height, round(y + half_h)))
            found.append(Detection("rbc", box, touches_border(box, masks.valid, (height, width)),
                                   centre.score))
        return found


def load_red_cell_finder(path: Path | None) -> RedCellFinder | None:
    """The trained finder at ``path``; ``None`` (the colour rule, detect's default) if unset."""
    return LearnedRedCells.load(path) if path is not None else None
