"""Adapting a model to one laboratory from a few of its experts' labelled cells.

The backbone stays as trained; only the head moves. That keeps an adaptation within minutes on
two CPU cores, lets it learn from ten cells a class without overfitting the whole network, and
keeps the base model's feature space, so the base data need not travel with the model:

- the laboratory's cells are embedded under the eight exact symmetries of a square (cells have
  no up, down or handedness), which multiplies each labelled cell by eight real views;
- the classes the laboratory did not label are remembered by *feature replay*: embeddings drawn
  from the Gaussian class model the rejection step already stores (class means, one shared
  covariance, Lee et al. 2018), so a laboratory that labels only neutrophils and lymphocytes
  does not lose basophils; where the base model's own training cells are at hand, their real
  embeddings are replayed instead, with the base head's probabilities as the targets
  (distillation), which keeps the base data's accuracy where the Gaussians cost it a point;
- the head starts from the base head and is pulled back towards it (L2-SP, Li et al. 2018), so
  a few cells move it only as far as they need;
- the rejection step learns the laboratory's look: its class means join the base ones and its
  scatter about them widens the covariance;
- a head is always sure of the cells it was fitted on, so the laboratory's temperature and
  rejection threshold come from cross-fitting (fit on half the cells, judge the other half);
  the threshold never rises so far that an image of no blood cell passes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
import torch.nn.functional as F
from PIL import Image

from vision.data import Sample
from vision.model.efficientnet_lite import EfficientNetLite
from vision.model.preprocess import Preprocessing
from vision.model.rejection import OodDetector
from vision.training.calibration import fit_temperature
from vision.training.features import Progress, extract_features
from vision.training.noncell import non_cell_images
from vision.training.zoom import zoom_factors, zoomed


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 300
    lr: float = 0.01
    replay_per_class: int = 64  # replayed base embeddings per class and step
    # L2 pull of the head towards the base head. Re-checked over three laboratories (v7 on LISC
    # and DeepAPL, v5 on Bio-Net; 10 and 25 cells a class): none helped LISC and Bio-Net by
    # 0.5-1.9 points and cost DeepAPL 1.6-4.3; 0.05, the replay's weight, the prior and the
    # steps moved none by more than 1.8 either way.
    anchor: float = 0.01
    views: int = 8  # symmetries of the square per labelled cell (1 to 8)
    seed: int = 0
    lab_weight: float = 0.5  # the laboratory's cells' share of the loss; the replay has the rest
    # Temperature and rejection threshold cross-fitted on the laboratory's cells; without, the
    # base model's are kept (with its base cells distilled, the head gives them what it did).
    recalibrate: bool = True
    # The head's bias takes the laboratory's class frequencies (``laboratory_prior``).
    class_prior: bool = True
    # The rejection step's covariance takes the laboratory's scatter (``with_laboratory_cells``).
    widen_covariance: bool = True
    # Above 1, every cell (the laboratory's and the replayed base cells) is also learnt zoomed by
    # a factor drawn log-uniformly within [1 / zoom, zoom] (``vision.training.zoom``), as a misread
    # scale frames it on the analysis path; the base cells keep their as-framed answer there.
    zoom: float = 1.0


# Adding a whole labelled source beside the base data (a few hundred cells beside thousands):
# its cells weigh a tenth of the distilled base cells, so the base data keeps its accuracy, and
# the head is not held back towards the base head, since the source is meant to move it (both
# chosen on PBC val and Bio-Net val). The base model's calibration and rejection step stay: a
# source is not the laboratory the model serves, so its class frequencies are not taken either.
SOURCE_CONFIG = AdaptConfig(lab_weight=1 / 11, anchor=0.0, recalibrate=False,
                            class_prior=False, widen_covariance=False)


def dihedral_views(x: torch.Tensor, views: int) -> list[torch.Tensor]:
    """The first ``views`` of the eight rotations and mirror images of a N x C x H x W batch."""
    out = []
    for index in range(views):
        turned = torch.rot90(x, index % 4, dims=(2, 3))
        out.append(turned.flip(3) if index >= 4 else turned)
    return out


@torch.no_grad()
def embed_cells(model: EfficientNetLite, images: Sequence[Image.Image], preprocess: Preprocessing,
                views: int, progress: Progress, batch_size: int = 16) -> torch.Tensor:
    """Embeddings (N x views x D) of each cell under ``views`` symmetries, in eval mode."""
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = preprocess.batch(images[start:start + batch_size])
        chunks.append(torch.stack([model.features(view.contiguous())
                                   for view in dihedral_views(batch, views)], dim=1))
        progress(f"  embedded {min(start + batch_size, len(images))}/{len(images)} cells")
    return torch.cat(chunks)


def embed_base_cells(model: EfficientNetLite, samples: Sequence[Sample],
                     preprocess: Preprocessing, config: AdaptConfig,
                     progress: Progress) -> torch.Tensor:
    """The base model's own training cells embedded to be distilled (``DistilledCells``): N x D,
    or with ``config.zoom`` above 1, N x 2 x D (each cell as framed, then zoomed once)."""
    framed = extract_features(model, samples, preprocess, progress)
    if config.zoom <= 1:
        return framed
    progress("embedding them zoomed")
    factors = zoom_factors(len(samples), config.zoom, config.seed + 1)
    return torch.stack([framed, extract_features(
        model, samples, preprocess, progress,
        view=lambda image, index: zoomed(image, factors[index]))], dim=1)


def non_cell_features(model: EfficientNetLite, preprocess: Preprocessing) -> torch.Tensor:
    """Embeddings (N x D) of the built-in images of no blood cell (``vision.training.noncell``),
    one view each, as serving sees them."""
    return embed_cells(model, [image for _, image in non_cell_images()], preprocess, 1,
                       lambda _: None)[:, 0]


class Replay(Protocol):
    def batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Base-class embeddings and the probabilities the head should give them."""
        ...


@dataclass(frozen=True)
class BaseGaussians:
    """The base training data's class Gaussians (class means, one shared covariance), as the
    rejection step stores them, inverted and factored once per adaptation: a 1280-wide inverse
    costs a third of a second, and an adaptation fits three heads and three detectors."""

    means: torch.Tensor  # classes x D
    covariance: torch.Tensor  # D x D, float64
    factor: torch.Tensor  # its Cholesky factor, float32

    @classmethod
    def of(cls, detector: OodDetector, classes: int | None = None) -> BaseGaussians:
        """The first ``classes`` means of ``detector`` (all by default): they are the classes'
        own, in class order; an adapted model's detector holds its laboratory's means after
        them, which have no class index of their own."""
        covariance = torch.linalg.inv(detector.precision.double())
        factor = torch.linalg.cholesky((covariance + covariance.T) / 2).float()
        return cls(detector.means[:classes], covariance, factor)

    def sample(self, per_class: int,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` embeddings of every class, and their class indices."""
        classes, dim = self.means.shape
        noise = torch.randn(classes * per_class, dim, generator=generator)
        labels = torch.arange(classes).repeat_interleave(per_class)
        return self.means[labels] + noise @ self.factor.T, labels


class GaussianBank:
    """One bank drawn up front, a fresh subset of it each step: drawing 1280-wide Gaussians
    every step would cost more than the fit itself."""

    def __init__(self, gaussians: BaseGaussians, config: AdaptConfig,
                 generator: torch.Generator) -> None:
        classes = len(gaussians.means)
        self.bank, labels = gaussians.sample(4 * config.replay_per_class, generator)
        self.targets = F.one_hot(labels, classes).float()
        self.per_step = config.replay_per_class * classes

    def batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.randperm(len(self.bank), generator=generator)[:self.per_step]
        return self.bank[chosen], self.targets[chosen]


class DistilledCells:
    """The base model's own training cells, embedded, with its head's probabilities as targets:
    no labels needed, and the head keeps giving these cells what the base gave them.

    ``features`` is N x D, or N x V x D for several views of each cell (view 0 as framed): every
    view is given what the base head gives the cell as framed."""

    def __init__(self, features: torch.Tensor, base: torch.nn.Linear) -> None:
        views = features if features.dim() == 3 else features[:, None]
        self.features = views.flatten(0, 1)
        with torch.no_grad():
            self.targets = F.softmax(base(views[:, 0]), dim=1).repeat_interleave(
                views.shape[1], dim=0)

    def batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features, self.targets


def fit_head(base: torch.nn.Linear, features: torch.Tensor, labels: torch.Tensor,
             gaussians: BaseGaussians, config: AdaptConfig, progress: Progress,
             base_cells: torch.Tensor | None = None) -> torch.nn.Linear:
    """A copy of ``base`` fitted to the laboratory's embeddings plus replayed base classes:
    ``base_cells`` (embeddings of the base training cells, distilled) where given, else draws
    from the base classes' Gaussians."""
    head = torch.nn.Linear(base.in_features, base.out_features)
    head.load_state_dict(base.state_dict())
    anchor = {name: value.detach().clone() for name, value in base.state_dict().items()}
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    replay: Replay = (GaussianBank(gaussians, config, generator)
                      if base_cells is None
                      else DistilledCells(base_cells, base))
    for step in range(config.steps):
        replayed, targets = replay.batch(generator)
        loss = config.lab_weight * F.cross_entropy(head(features), labels) \
            + (1 - config.lab_weight) * F.cross_entropy(head(replayed), targets)
        loss = loss + config.anchor * sum(
            ((parameter - anchor[name]) ** 2).sum() for name, parameter in head.named_parameters())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (step + 1) % 100 == 0 or step + 1 == config.steps:
            progress(f"  head step {step + 1}/{config.steps}: loss {float(loss.detach()):.4f}")
    return head.eval()


def laboratory_prior(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Per class, the log of how much likelier it is among the laboratory's cells than among
    the head's (class-balanced) replay: the laboratory's labelled cells counted with one
    pseudo-cell a class (Laplace), so a class its experts never labelled becomes rarer there,
    never impossible.

    The head learns the laboratory's look, not how often it sees each class; a laboratory whose
    experts have labelled fifty cells and no immature granulocyte rarely sees one. The
    pseudo-count matters little (chosen on Bio-Net's cells, a laboratory the base never saw).
    """
    counts = torch.bincount(labels, minlength=classes).float()
    return torch.log((counts + 1) / (counts.sum() + classes) * classes)


def with_prior(head: torch.nn.Linear, labels: torch.Tensor) -> torch.nn.Linear:
    """``head`` with ``laboratory_prior`` added to its bias."""
    with torch.no_grad():
        head.bias.add_(laboratory_prior(labels, head.out_features))
    return head


def with_laboratory_cells(detector: OodDetector, features: torch.Tensor, labels: torch.Tensor,
                          widen: bool = True,
                          covariance: torch.Tensor | None = None) -> OodDetector:
    """The base detector plus one mean per class of the laboratory's embeddings; with
    ``widen``, its covariance (``covariance``, the inverse of its precision, where already at
    hand) widened by their scatter about those means.

    Another laboratory's cells vary in directions the base cells hardly did (its stain, its
    camera), and under the base covariance alone they lie as far from every mean as images of
    no blood cell do: kept below every such image, the threshold then turned away most of the
    laboratory's own cells. With its scatter added they are accepted, and images of no blood
    cell still are not.
    """
    classes = labels.unique()
    lab_means = torch.stack([features[labels == c].mean(dim=0) for c in classes])
    means = torch.cat([detector.means, lab_means])
    if not widen:
        return OodDetector(means, detector.precision, detector.threshold)
    residuals = (features - lab_means[torch.searchsorted(classes, labels)]).double()
    base = torch.linalg.inv(detector.precision.double()) if covariance is None else covariance
    widened = base + residuals.T @ residuals / len(residuals)
    precision = torch.linalg.inv((widened + widened.T) / 2)
    return OodDetector(means, ((precision + precision.T) / 2).float(), detector.threshold)


@dataclass(frozen=True)
class LaboratoryHead:
    head: torch.nn.Linear
    detector: OodDetector
    temperature: float


def two_folds(labels: torch.Tensor) -> list[torch.Tensor]:
    """Two halves of the cells with each class split between them as evenly as it goes."""
    order = sorted(range(len(labels)), key=lambda i: (int(labels[i]), i))
    return [torch.tensor(order[0::2]), torch.tensor(order[1::2])]


def capped_threshold(detector: OodDetector, wanted: float, base: float,
                     non_cells: torch.Tensor | None) -> float:
    """``wanted``, at least the ``base`` threshold, but always below the score ``detector``
    gives the nearest of ``non_cells`` (embeddings of images that are no blood cell).

    A laboratory's cells, judged by means fitted on a handful of others, score far from every
    mean, so the quantile of their cross-fitted scores lies far out: after ten labelled cells
    it would let in images of no blood cell the base threshold keeps out.
    """
    threshold = max(base, wanted)
    if non_cells is None or not len(non_cells):
        return threshold
    lowest = detector.scores(non_cells).min()
    # The next value down in the scores' own precision: ``accepts`` compares in it.
    below = float(torch.nextafter(lowest, torch.tensor(-math.inf, dtype=lowest.dtype)))
    return min(threshold, below)


def _fit_laboratory(base: torch.nn.Linear, embedded: torch.Tensor, labels: torch.Tensor,
                    detector: OodDetector, gaussians: BaseGaussians, config: AdaptConfig,
                    progress: Progress,
                    base_cells: torch.Tensor | None) -> tuple[torch.nn.Linear, OodDetector]:
    """The head (with the laboratory's prior) and the detector fitted on these cells' views
    (``embedded``: cells x views x D; the first ``config.views`` as framed, any after them
    zoomed). The detector takes the views as framed only: its class means stay where a cell
    framed right lies."""
    head = fit_head(base, embedded.flatten(0, 1),
                    labels.repeat_interleave(embedded.shape[1]), gaussians, config, progress,
                    base_cells)
    if config.class_prior:
        head = with_prior(head, labels)
    framed = embedded[:, :config.views]
    return head, with_laboratory_cells(detector, framed.flatten(0, 1),
                                       labels.repeat_interleave(framed.shape[1]),
                                       config.widen_covariance, gaussians.covariance)


def adapt_head(base: torch.nn.Linear, embedded: torch.Tensor, labels: torch.Tensor,
               detector: OodDetector, base_temperature: float, config: AdaptConfig,
               progress: Progress, base_cells: torch.Tensor | None = None,
               non_cells: torch.Tensor | None = None) -> LaboratoryHead:
    """The laboratory's head, with its confidence and its rejection threshold judged honestly.

    ``embedded`` is N cells x V views x D. A head fitted on its own cells is sure of them, so
    the temperature and the threshold come from cross-fitting: a head and class means fitted
    on one half of the cells, judged on the other half's serving view, and the other way round.
    The threshold never lets in one of ``non_cells`` (``capped_threshold``).
    """
    gaussians = BaseGaussians.of(detector, base.out_features)
    head, full = _fit_laboratory(base, embedded, labels, detector, gaussians, config, progress,
                                 base_cells)
    folds = two_folds(labels)
    if not config.recalibrate or min(len(f) for f in folds) < 2:
        threshold = capped_threshold(full, detector.threshold, detector.threshold, non_cells)
        return LaboratoryHead(head, replace(full, threshold=threshold), base_temperature)
    logits, scores, targets = [], [], []
    for fitted, judged in (folds, folds[::-1]):
        fold_head, fold_detector = _fit_laboratory(base, embedded[fitted], labels[fitted],
                                                   detector, gaussians, config, lambda _: None,
                                                   base_cells)
        with torch.no_grad():
            logits.append(fold_head(embedded[judged, 0]))
        scores.append(fold_detector.scores(embedded[judged, 0]))
        targets.append(labels[judged])
    temperature = min(20.0, max(0.5, fit_temperature(torch.cat(logits), torch.cat(targets))))
    threshold = capped_threshold(full, float(torch.quantile(torch.cat(scores), 0.95)),
                                 detector.threshold, non_cells)
    progress(f"  cross-fitted: temperature {temperature:.2f}, threshold {threshold:.0f} "
             f"(base {base_temperature:.2f}, {detector.threshold:.0f})")
    return LaboratoryHead(head, replace(full, threshold=threshold), temperature)


@dataclass(frozen=True)
class Adapted:
    model: EfficientNetLite
    detector: OodDetector
    temperature: float
    cells: int
    per_class: dict[str, int]


def adapt_model(model: EfficientNetLite, detector: OodDetector, classes: Sequence[str],
                preprocess: Preprocessing, temperature: float, images: Sequence[Image.Image],
                labels: Sequence[int], config: AdaptConfig,
                progress: Progress = print, base_cells: torch.Tensor | None = None) -> Adapted:
    """``model`` (left untouched) with its head adapted to these labelled cells; with
    ``base_cells`` (``extract_features`` of the base training cells, N x D, or N x V x D with
    each cell's zoomed views after it as framed) the base classes are kept by distillation on
    them rather than by Gaussian replay."""
    if not images:
        raise ValueError("no labelled cells to adapt from")
    progress(f"embedding {len(images)} labelled cells x {config.views} views")
    embedded = embed_cells(model, images, preprocess, config.views, progress)
    if config.zoom > 1:
        progress(f"embedding them zoomed (within x{1 / config.zoom:.2f} to x{config.zoom:.2f})")
        factors = zoom_factors(len(images), config.zoom, config.seed)
        embedded = torch.cat([embedded, embed_cells(
            model, [zoomed(image, factor) for image, factor in zip(images, factors, strict=True)],
            preprocess, config.views, progress)], dim=1)
    targets = torch.tensor(list(labels))
    progress("embedding the images that are no blood cell, to keep them out")
    non_cells = non_cell_features(model, preprocess)
    progress("fitting the head")
    fitted = adapt_head(model.classifier, embedded, targets, detector, temperature, config,
                        progress, base_cells, non_cells)
    adapted = EfficientNetLite(num_classes=len(classes), architecture=model.architecture)
    adapted.load_state_dict(model.state_dict())
    adapted.classifier = fitted.head
    per_class = {classes[c]: int(n) for c, n in zip(*targets.unique(return_counts=True),
                                                    strict=True)}
    return Adapted(adapted.eval(), fitted.detector, fitted.temperature, len(images), per_class)
