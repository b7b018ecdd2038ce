"""Fine-tuning Lite0 on an image-folder data set, designed for two CPU cores.

Images are decoded once into a uint8 cache; most epochs run at low resolution; the first epoch
keeps the early blocks frozen; the last phase runs at serving resolution. Every epoch ends with
a checkpoint, and a restarted run resumes from the last one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vision.data import Sample, index_image_folder, manifest_hash, subsample
from vision.model.artifact import load_artifact
from vision.model.efficientnet_lite import EfficientNetLite, MBConvLite
from vision.model.imagenet import load_imagenet
from vision.training.augment import AugmentConfig, cache_size_for, centre_batch, normalise
from vision.training.cache import cached_split
from vision.training.checkpoint import load_checkpoint, save_checkpoint
from vision.training.config import ExtraSource, Phase, TrainConfig
from vision.training.features import Progress
from vision.training.step import Teacher, train_step

SERVING_RESOLUTION = 224


@dataclass(frozen=True)
class Split:
    samples: list[Sample]
    images: torch.Tensor  # uint8 N x 3 x S x S, S = cache_size_for(serving crop)
    labels: torch.Tensor
    manifest: str


@dataclass(frozen=True)
class TrainedModel:
    model: EfficientNetLite
    history: list[dict[str, Any]]
    splits: dict[str, Split]
    wall_seconds: float
    device: str  # where the epochs ran, as the card reports it


def load_split(root: Path, name: str, cache_dir: Path, limit: int | None, seed: int,
               progress: Progress, classes: Sequence[str],
               crop: int = SERVING_RESOLUTION) -> Split:
    samples = subsample(index_image_folder(root / name, classes), limit, seed)
    images, labels = cached_split(samples, cache_size_for(crop), cache_dir,
                                  f"{root.name}-{name}", progress)
    return Split(samples, images, labels, manifest_hash(samples, root / name))


def with_extra_sources(train: Split, sources: Sequence[ExtraSource], cache_dir: Path,
                       seed: int, progress: Progress, crop: int, classes: Sequence[str]) -> Split:
    """The train split with every extra source's images appended ``repeat`` times."""
    parts, labels, samples = [train.images], [train.labels], list(train.samples)
    for source in sources:
        extra = load_split(source.root.parent, source.root.name, cache_dir, None, seed,
                           progress, classes, crop=crop)
        progress(f"  + {len(extra.samples)} cells x {source.repeat} from {source.root}")
        parts += [extra.images] * source.repeat
        labels += [extra.labels] * source.repeat
        samples += extra.samples * source.repeat
    if len(parts) == 1:
        return train
    return Split(samples, torch.cat(parts), torch.cat(labels), train.manifest)


def _device_of(model: EfficientNetLite) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_features(model: EfficientNetLite, images: torch.Tensor, resolution: int,
                     batch_size: int = 64) -> torch.Tensor:
    """Pooled embeddings of the serving view of each cached image, in eval mode, on the CPU."""
    model.eval()
    device = _device_of(model)
    chunks = []
    for start in range(0, len(images), batch_size):
        x = normalise(centre_batch(images[start:start + batch_size].to(device), resolution))
        chunks.append(model.features(x.contiguous(memory_format=torch.channels_last)).cpu())
    return torch.cat(chunks)


@torch.no_grad()
def predict_logits(model: EfficientNetLite, images: torch.Tensor, resolution: int) -> torch.Tensor:
    # In eval mode dropout is the identity, so the head applies directly to the embeddings.
    features = predict_features(model, images, resolution)
    logits: torch.Tensor = model.classifier(features.to(_device_of(model)))
    return logits.cpu()


def _set_frozen(model: EfficientNetLite, frozen_blocks: int) -> None:
    frozen = [model.stem, *list(model.blocks)[:frozen_blocks]] if frozen_blocks else []
    for module in [model.stem, *model.blocks]:
        is_frozen = any(module is f for f in frozen)
        for parameter in module.parameters():
            parameter.requires_grad_(not is_frozen)
        # Frozen blocks also keep their ImageNet BatchNorm statistics.
        module.train(not is_frozen)


def freeze_norm_statistics(model: EfficientNetLite) -> None:
    """BatchNorm alone in eval mode: its running statistics stay, its scale and shift still
    learn. Call it after anything that puts the model back in training mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()


def _phase_of(config: TrainConfig, epoch: int) -> tuple[Phase, int]:
    for phase in config.phases:
        if epoch < phase.epochs:
            return phase, epoch
        epoch -= phase.epochs
    raise IndexError(epoch)


def _lr(phase: Phase, epoch_in_phase: int, step: int, steps_per_epoch: int) -> float:
    done = epoch_in_phase * steps_per_epoch + step
    total = phase.epochs * steps_per_epoch
    if done < phase.warmup_steps:
        return phase.lr * (done + 1) / phase.warmup_steps
    progress = (done - phase.warmup_steps) / max(1, total - phase.warmup_steps)
    return phase.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _optimiser(model: EfficientNetLite, config: TrainConfig) -> torch.optim.AdamW:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        # BatchNorm scales and all biases are not weights to shrink.
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    return torch.optim.AdamW([
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ], lr=config.phases[0].lr)


def initial_model(config: TrainConfig, imagenet: Path | None) -> EfficientNetLite:
    """The recipe's ImageNet network with a fresh head, or a trained model to go on from
    (``init_from``)."""
    if config.init_from is None:
        model = load_imagenet(imagenet, config.architecture)
        model.replace_classifier(len(config.classes))
        return model
    model, card, _ = load_artifact(config.init_from)
    if config.classes[:len(card.classes)] != card.classes:
        raise ValueError(f"{config.init_from} predicts {card.classes}, which must come first in "
                         f"the recipe's classes {config.classes}")
    if card.architecture != config.architecture:
        raise ValueError(f"{config.init_from} is {card.architecture}, but the recipe asks for "
                         f"{config.architecture}")
    return with_more_classes(model, len(config.classes))


def with_more_classes(model: EfficientNetLite, classes: int) -> EfficientNetLite:
    """``model`` whose head names ``classes`` classes: its own first, as they were; each new
    class starts unlikely (zero weights, a low bias), so the first steps do not unsettle the
    classes the model already knows."""
    old = model.classifier
    if old.out_features == classes:
        return model
    model.replace_classifier(classes)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(float(old.bias.min()) - 2.0)
        model.classifier.weight[:old.out_features] = old.weight
        model.classifier.bias[:old.out_features] = old.bias
    return model


def teacher_of(config: TrainConfig, device: torch.device) -> Teacher | None:
    if config.distil_from is None:
        return None
    model, card, _ = load_artifact(config.distil_from)
    if config.classes[:len(card.classes)] != card.classes:
        raise ValueError(f"the teacher {config.distil_from} names {card.classes}, which must "
                         f"come first in the recipe's classes {config.classes}")
    model = model.to(device).to(memory_format=torch.channels_last).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return Teacher(model, config.distil_weight, config.distil_temperature)


def epoch_order(images: int, base: int, drawn: int, generator: torch.Generator) -> torch.Tensor:
    """An epoch's shuffled indices: ``drawn`` of the first ``base`` (the main train split),
    then every index after them (the extra sources)."""
    if drawn == base:
        return torch.randperm(images, generator=generator)
    chosen = torch.cat([torch.randperm(base, generator=generator)[:drawn],
                        torch.arange(base, images)])
    return chosen[torch.randperm(len(chosen), generator=generator)]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}"


def fine_tune(data_root: Path, run_dir: Path, cache_dir: Path, config: TrainConfig,
              progress: Progress = print, augment: AugmentConfig | None = None,
              device: torch.device | None = None,
              splits_to_load: Sequence[str] = ("train", "val", "test"),
              imagenet: Path | None = None) -> TrainedModel:
    """Train on ``device`` (the CPU by default); the model comes back on the CPU in eval mode.

    On CUDA, and on the CPU with ``config.cpu_bf16``, the forward and backward passes run under
    bf16 autocast; the weights and the optimiser stay in fp32.
    """
    torch.set_num_threads(config.threads)
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    augment = augment or config.augment
    splits = {
        name: load_split(data_root, name, cache_dir,
                         config.max_train if name == "train" else config.max_eval,
                         config.seed, progress, config.classes, crop=config.serving_resolution)
        for name in splits_to_load
    }
    train = with_extra_sources(splits["train"], config.extra_train, cache_dir, config.seed,
                               progress, config.serving_resolution, config.classes)

    model = initial_model(config, imagenet)
    model.dropout.p = config.dropout
    for block in model.blocks:
        if isinstance(block, MBConvLite):
            block.drop_path.p *= config.drop_path / 0.2  # rescale the built-in 0.2 schedule
    model = model.to(device).to(memory_format=torch.channels_last)
    optimiser = _optimiser(model, config)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=device.type == "cuda" or config.cpu_bf16)

    resumed = load_checkpoint(run_dir, model, optimiser)
    history: list[dict[str, Any]] = resumed["history"] if resumed else []
    first_epoch = resumed["next_epoch"] if resumed else 0
    spent = resumed["wall_seconds"] if resumed else 0.0
    if resumed:
        progress(f"resuming at epoch {first_epoch + 1} from {run_dir}")

    teacher = teacher_of(config, device)
    base = len(splits["train"].samples)
    drawn = round(base * config.base_fraction)
    per_epoch = len(train.samples) - base + drawn
    if drawn < base:
        progress(f"each epoch: {drawn} of the {base} main train images, and every extra one")
    total_epochs = sum(p.epochs for p in config.phases)
    steps = math.ceil(per_epoch / config.batch_size)
    for epoch in range(first_epoch, total_epochs):
        phase, in_phase = _phase_of(config, epoch)
        _set_frozen(model, phase.frozen_blocks)
        model.classifier.train()
        model.head.train()
        if config.frozen_norm_statistics:
            freeze_norm_statistics(model)
        generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        order = epoch_order(len(train.samples), base, drawn, generator)
        epoch_started = time.monotonic()
        running = 0.0
        for step in range(steps):
            index = order[step * config.batch_size:(step + 1) * config.batch_size]
            loss = train_step(model, optimiser, train.images[index].to(device),
                              train.labels[index].to(device), resolution=phase.resolution,
                              augment=augment, generator=generator,
                              lr=_lr(phase, in_phase, step, steps),
                              label_smoothing=config.label_smoothing, autocast=autocast,
                              teacher=teacher)
            running = 0.9 * running + 0.1 * loss if step else loss
            if (step + 1) % 25 == 0 or step + 1 == steps:
                elapsed = time.monotonic() - epoch_started
                rate = (step + 1) * config.batch_size / elapsed
                eta = elapsed / (step + 1) * (steps - step - 1)
                progress(f"epoch {epoch + 1}/{total_epochs} @{phase.resolution}px "
                         f"step {step + 1}/{steps} loss {running:.4f} "
                         f"{rate:.1f} img/s, epoch ETA {eta / 60:.1f} min")
        val_logits = predict_logits(model, splits["val"].images, config.serving_resolution)
        val_accuracy = float((val_logits.argmax(1) == splits["val"].labels).float().mean())
        seconds = time.monotonic() - epoch_started
        spent += seconds
        history.append({"epoch": epoch + 1, "resolution": phase.resolution,
                        "train_loss": round(running, 4), "val_accuracy": round(val_accuracy, 5),
                        "minutes": round(seconds / 60, 2)})
        remaining = total_epochs - epoch - 1
        progress(f"epoch {epoch + 1}/{total_epochs} done in {seconds / 60:.1f} min: "
                 f"loss {running:.4f}, val accuracy {val_accuracy:.4f}; "
                 f"about {remaining * seconds / 60:.0f} min left")
        save_checkpoint(run_dir, model, optimiser, {
            "next_epoch": epoch + 1, "history": history, "wall_seconds": spent,
            "config": config.model_dump(mode="json"), "device": device_name(device),
        })
    model.eval()
    # A run resumed after its last epoch reports where its epochs ran, not where it resumed.
    ran_on = device_name(device)
    if resumed is not None and first_epoch == total_epochs:
        ran_on = resumed.get("device", ran_on)
    return TrainedModel(model.cpu(), history, splits, spent, ran_on)
