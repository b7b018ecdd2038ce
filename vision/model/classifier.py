"""Inference: a loaded artifact turned into labelled, calibrated predictions."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from vision.labels import BLAST_LIKE, NOT_RECOGNISED
from vision.model.artifact import ModelCard, load_artifact
from vision.model.batching import DynamicBatcher, Forward
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.rejection import OodDetector
from vision.model.screen import screened, screened_columns

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LabelScore:
    label: str
    confidence: float




@dataclass(frozen=True)
class CellPrediction:
    label: str  # a class name, or NOT_RECOGNISED when the input does not look like a cell
    confidence: float
    top3: tuple[LabelScore, ...]
    box: Box  # x0, y0, x1, y1 in pixels of the original image
    ood_score: float | None = None
    # The probability of the blast-like classes together (0 for a model that knows none).
    blast_probability: float = 0.0

    @property
    def recognised(self) -> bool:
        return self.label != NOT_RECOGNISED


class _Scoring(nn.Module):
    """The network as serving needs it: pooled features (for rejection) and logits, from
    inputs in its own precision."""

    def __init__(self, model: EfficientNetLite, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x.to(self.dtype))
        return features, self.model.classifier(features)


def shared_trunk(model: EfficientNetLite, other: EfficientNetLite) -> int | None:
    """How many of the first blocks ``other`` holds exactly as ``model`` does, its stem too
    (None where the stems differ): a screen fine-tuned from the classifier with those blocks
    frozen computes the same activations there."""
    def same(a: nn.Module, b: nn.Module) -> bool:
        mine, theirs = a.state_dict(), b.state_dict()
        return mine.keys() == theirs.keys() and all(
            mine[k].shape == theirs[k].shape and torch.equal(mine[k], theirs[k]) for k in mine)

    if not same(model.stem, other.stem):
        return None
    depth = 0
    for mine, theirs in zip(model.blocks, other.blocks, strict=False):
        if not same(mine, theirs):
            break
        depth += 1
    return depth


class _ScreenedScoring(nn.Module):
    """A classifier and its screen in one pass: the trunk they share (stem and first
    ``shared`` blocks) computed once, each network's own later blocks and head after it. The
    early blocks work at the input's full resolution (eager, two cores: 58 of 91 ms for 8 cells
    in bfloat16); as workers serve (TorchScript, bfloat16 first) the screen's share of a
    close-up's classification fell from 12.6 to 9.5 ms (``benchmarks.path_speed``)."""

    def __init__(self, model: EfficientNetLite, screen: EfficientNetLite, shared: int,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model.to(dtype)
        self.screen = screen.to(dtype)
        self.shared = shared
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        trunk = self.model.trunk(x.to(self.dtype), self.shared)
        features = self.model.features_from(trunk, self.shared)
        screen_features = self.screen.features_from(trunk, self.shared)
        return features, self.model.classifier(features), self.screen.classifier(screen_features)


def native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX): elsewhere it is
    emulated, slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


# Scored in bfloat16 first (1.6-1.9 x fp32's cells/s on the dev machine's two cores), a cell
# keeps that answer only where fp32 could not say otherwise: its top probability at least
# ``SURE_IN_BF16``, its blast-like probability not within ``BLAST_MARGIN`` of the review
# threshold, and its out-of-distribution score (which moved up to 10%) outside ``OOD_BAND``
# times the threshold. Every other cell is scored again in fp32. Through the path on PBC test,
# LISC and Bio-Net's fields (4,671 images), no label, box or flag moved; the kept confidences
# moved at most 0.0037 from fp32's (0.0092 with 0.99: a 0.981 read as 0.990); a quarter of the
# cells were scored again.
SURE_IN_BF16 = 0.995
BLAST_MARGIN = 0.01
OOD_BAND = (0.75, 1.33)
# A screen's blast-like share below this keeps bfloat16's answer (``_close_screen_calls``):
# on DeepAPL val and 800 PBC val cells (1,311), screened in bfloat16 first against fp32, no
# label or possible-blast flag moved and confidences moved at most 0.0044 (0.0024 with the
# screen in fp32; 0.0075 from 0.05). With the screen's own close calls, nearly every cell was
# one (a blast-like share near the 1% review threshold) and paid a second pass.
SCREEN_SURE_BELOW = 0.02


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def chunk_size_for(device: torch.device) -> int:
    """Cells per forward pass: small on a CPU, where they keep the working set in cache (two
    cores, 2026-12-07, cells/s at 1 / 4 / 8 / 16 / 64: fp32 35 / 42 / 39 / 33 / 25, bfloat16
    first 66 / 62 / 62 / 53 / 44: BENCHMARKS.md, "Speed"); large on a GPU, whose throughput
    keeps rising with the batch (H200, fp32: 5,200 cells/s at 16, 16,000 at 256)."""
    return 8 if device.type == "cpu" else 256


class CellClassifier:
    def __init__(self, model: EfficientNetLite, card: ModelCard, device: torch.device,
                 detector: OodDetector | None = None, fast: bool = False) -> None:
        self.card = card
        self.detector = detector
        self.device = device
        self.batch_size = chunk_size_for(device)
        self.preprocess = card.preprocess
        self.model = model.to(device).eval().to(memory_format=torch.channels_last)
        # What its answers name: the card's classes, and a screen's blast-like ones after them.
        self.classes: list[str] = list(card.classes)
        self._screen: tuple[CellClassifier, list[int]] | None = None
        # The first blocks its screen shares with it, run once for both (``_ScreenedScoring``).
        self._shared: int | None = None
        self._net: nn.Module = self._scoring(torch.float32)
        # The bfloat16 copy that scores first (``fast``, on a CPU that has it natively).
        self._fast: nn.Module | None = None
        if fast and device.type == "cpu" and native_bf16():
            self._fast = self._scoring(torch.bfloat16)
        self._run: Forward = self.forward
        self._screening = False  # it is another model's screen: only its blast-like share counts
        # The model's own blast-like columns (its bfloat16 close calls read them), and those of
        # what its answers name (its screen's, once screened).
        self._own_blast_like = [i for i, label in enumerate(card.classes) if label in BLAST_LIKE]
        self._blast_like = self._own_blast_like

    @classmethod
    def from_artifact(cls, path: Path, device: str = "auto", fast: bool = False,
                      screen: Path | None = None) -> CellClassifier:
        """The model at ``path``, screened by the one at ``screen`` (``screen_with``)."""
        model, card, detector = load_artifact(path)
        classifier = cls(model, card, resolve_device(device), detector, fast)
        if screen is not None and screen.resolve() != path.resolve():
            classifier.screen_with(cls.from_artifact(screen, device, fast))
        return classifier

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def screen(self) -> CellClassifier | None:
        return self._screen[0] if self._screen else None

    def screen_with(self, screen: CellClassifier, share_trunk: bool = True) -> None:
        """Name blasts (and promonocytes) with ``screen``'s probabilities of them
        (``vision.model.screen``); nothing changes for a model that names them itself. Where
        the screen holds the classifier's first blocks unchanged and sees the same input, both
        are scored in one pass that runs those blocks once (``share_trunk``)."""
        columns = screened_columns(self.card.classes, screen.card.classes)
        if not columns:
            return
        self._screen = (screen, columns)
        screen._screening = True
        self.classes = list(self.card.classes) + [screen.card.classes[i] for i in columns]
        self._blast_like = [i for i, label in enumerate(self.classes) if label in BLAST_LIKE]
        if share_trunk and screen.preprocess == self.preprocess and screen.device == self.device:
            self._shared = shared_trunk(self.model, screen.model)
        if self._shared is not None:
            self._net = self._scoring(torch.float32)
            if self._fast is not None:
                self._fast = self._scoring(torch.bfloat16)
            screen._fast = None  # its own passes are not run: this one's hold its blocks

    def _scoring(self, dtype: torch.dtype) -> nn.Module:
        """The network (with its screen, where they share a trunk) in ``dtype``: the loaded
        weights themselves in fp32, a copy in any other precision."""
        def own(model: EfficientNetLite) -> EfficientNetLite:
            return model if dtype == torch.float32 else copy.deepcopy(model)

        if self._screen is not None and self._shared is not None:
            return _ScreenedScoring(own(self.model), own(self._screen[0].model), self._shared,
                                    dtype)
        return _Scoring(own(self.model), dtype)

    @property
    def blast_review_above(self) -> float | None:
        """The blast-like probability from which a cell named otherwise is flagged: the
        model's own, or its screen's."""
        if self.card.blast_review_above is not None or self._screen is None:
            return self.card.blast_review_above
        return self._screen[0].card.blast_review_above

    def compile_for_cpu(self) -> None:
        """Trace, freeze and optimise the network (and its bfloat16 copy) with TorchScript
        (BatchNorm folded into the convolutions, fused operators): about 10-20 % faster per cell
        on CPU, same outputs to float precision (tested)."""
        self._net = self._frozen(self._scoring(torch.float32).eval())
        if self._fast is not None:
            self._fast = self._frozen(self._fast)
        if self.screen is not None and self._shared is None:
            self.screen.compile_for_cpu()

    def _frozen(self, net: nn.Module) -> nn.Module:
        crop = self.preprocess.crop
        example = torch.zeros(2, 3, crop, crop).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing warns that SAME padding is computed in Python: inputs are always the
            # preprocessing crop, so baking it in is exactly right.
            warnings.simplefilter("ignore")
            frozen: nn.Module = torch.jit.optimize_for_inference(
                torch.jit.freeze(torch.jit.trace(net.eval(), example)))
        return frozen

    def warm_up(self) -> None:
        """Run each network twice on one cell and on a full chunk, so that TorchScript's
        profiling runs and the first kernels' set-up are paid before the first photo, not by
        the user who sends it."""
        crop = self.preprocess.crop
        with torch.inference_mode():
            for size in (1, self.batch_size):
                x = torch.zeros(size, 3, crop, crop, device=self.device)
                x = x.contiguous(memory_format=torch.channels_last)
                for net in (n for n in (self._net, self._fast) if n is not None):
                    for _ in range(2):
                        self._scored(net, x)
        if self.screen is not None and self._shared is None:
            self.screen.warm_up()

    def enable_dynamic_batching(self, max_batch: int, max_wait: float) -> None:
        """Let concurrent callers share forward passes (a worker running tasks in threads)."""
        self._run = DynamicBatcher(self.forward, max_batch, max_wait)
        if self.screen is not None and self._shared is None:
            self.screen.enable_dynamic_batching(max_batch, max_wait)

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Preprocessed images -> calibrated probabilities (screened, where the screen shares
        this pass) and out-of-distribution scores."""
        probs, ood = [], []
        for start in range(0, len(batch), self.batch_size):
            x = batch[start:start + self.batch_size].to(self.device)
            x = x.contiguous(memory_format=torch.channels_last)
            first = self._net if self._fast is None else self._fast
            chunk_probs, chunk_ood, chunk_screen = self._scored(first, x)
            if self._fast is not None:
                again = self._close_calls(chunk_probs, chunk_ood)
                if chunk_screen is not None and self.screen is not None:
                    again |= self.screen._close_calls(chunk_screen, None)
                if again.any():
                    exact_probs, exact_ood, exact_screen = self._scored(self._net, x[again])
                    chunk_probs[again] = exact_probs
                    if chunk_ood is not None and exact_ood is not None:
                        chunk_ood[again] = exact_ood
                    if chunk_screen is not None and exact_screen is not None:
                        chunk_screen[again] = exact_screen
            if chunk_screen is not None and self._screen is not None:
                chunk_probs = screened(chunk_probs, chunk_screen, self._screen[1])
            probs.append(chunk_probs)
            if chunk_ood is not None:
                ood.append(chunk_ood)
        return torch.cat(probs), (torch.cat(ood) if ood else None)

    def _scored(self, net: nn.Module, x: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Probabilities, out-of-distribution scores and, from a pass shared with the screen,
        the screen's probabilities."""
        features, logits, *screen_logits = net(x)
        probs = (logits.float() / self.card.temperature).softmax(dim=1).cpu()
        screen_probs = None
        if screen_logits and self.screen is not None:
            screen_probs = (screen_logits[0].float() / self.screen.card.temperature
                            ).softmax(dim=1).cpu()
        ood = None if self.detector is None else self.detector.scores(features.float().cpu())
        return probs, ood, screen_probs

    def _close_calls(self, probs: torch.Tensor, ood: torch.Tensor | None) -> torch.Tensor:
        """The cells whose bfloat16 answers fp32 might change (``SURE_IN_BF16``)."""
        threshold = self.card.blast_review_above
        own = self._own_blast_like
        if self._screening:
            return self._close_screen_calls(probs[:, own].sum(dim=1), threshold)
        close = probs.max(dim=1).values < SURE_IN_BF16
        if threshold is not None and own:
            blast = probs[:, own].sum(dim=1)
            close |= (blast - threshold).abs() < BLAST_MARGIN
        if ood is not None and self.detector is not None:
            low, high = (bound * self.detector.threshold for bound in OOD_BAND)
            close |= (ood > low) & (ood < high)
        return close

    @staticmethod
    def _close_screen_calls(blast: torch.Tensor, threshold: float | None) -> torch.Tensor:
        """A screen's close calls: only its blast-like share is read, and bfloat16 moves a
        share by a few per cent of itself. Under ``SCREEN_SURE_BELOW`` that share can neither
        name a blast nor move a confidence shown by more than a few thousandths (the screened
        model's top class keeps at least 1/C of the rest); only near the review threshold
        (``OOD_BAND`` times it) could it flip the possible-blast flag."""
        close = blast >= SCREEN_SURE_BELOW
        if threshold is not None:
            low, high = (bound * threshold for bound in OOD_BAND)
            close |= (blast > low) & (blast < high)
        return close

    def scores(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Calibrated class probabilities and, with a detector, out-of-distribution scores."""
        if not images:
            return torch.empty(0, len(self.classes)), None
        batch = self.preprocess.batch(images)
        probs, ood = self._run(batch)
        if self._screen is not None and self._shared is None:
            screen, columns = self._screen
            screen_batch = (batch if screen.preprocess == self.preprocess
                            else screen.preprocess.batch(images))
            probs = screened(probs, screen._run(screen_batch)[0], columns)
        return probs, ood

    def possible_blast(self, prediction: CellPrediction) -> bool:
        """Named otherwise, but the blast-like classes hold enough probability that a
        haematologist should look: a blast must never leave with a normal label unflagged."""
        threshold = self.blast_review_above
        return (threshold is not None and prediction.label not in BLAST_LIKE
                and prediction.blast_probability >= threshold)

    def is_outlier(self, ood_score: float | None) -> bool:
        return self.detector is not None and ood_score is not None \
            and ood_score > self.detector.threshold

    def probabilities(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return self.scores(images)[0]

    def classify_cells(
        self, image: Image.Image, boxes: Sequence[Box]
    ) -> list[CellPrediction]:
        return self.classify_crops([image.crop(box) for box in boxes], boxes)

    def classify_crops(
        self, crops: Sequence[Image.Image], boxes: Sequence[Box] | None = None,
        reject_outliers: bool = True,
    ) -> list[CellPrediction]:
        """Classify already-cropped cells in batches; ``boxes`` locate them for the result.

        With ``reject_outliers``, an input far from every training class is labelled
        NOT_RECOGNISED; without, it keeps its label and only ``ood_score`` tells.
        """
        if boxes is None:
            boxes = [(0, 0, crop.width, crop.height) for crop in crops]
        probs, ood = self.scores(crops)
        return self.predictions(probs, ood, boxes, reject_outliers)

    def predictions(self, probs: torch.Tensor, ood: torch.Tensor | None,
                    boxes: Sequence[Box], reject_outliers: bool = True,
                    ) -> list[CellPrediction]:
        """What ``scores`` (for cells at ``boxes``) say each cell is."""
        predictions = []
        for index, (box, row) in enumerate(zip(boxes, probs, strict=True)):
            values, indices = row.topk(min(3, row.numel()))
            top3 = tuple(
                LabelScore(self.classes[int(i)], float(v))
                for v, i in zip(values, indices, strict=True)
            )
            score = float(ood[index]) if ood is not None else None
            label = NOT_RECOGNISED if reject_outliers and self.is_outlier(score) \
                else top3[0].label
            blast = float(row[self._blast_like].sum()) if self._blast_like else 0.0
            predictions.append(CellPrediction(label, top3[0].confidence, top3, box, score,
                                              blast))
        return predictions

    def classify_image(self, image: Image.Image) -> list[CellPrediction]:
        """A single-cell image: the whole frame is the cell."""
        return self.classify_cells(image, [(0, 0, image.width, image.height)])
