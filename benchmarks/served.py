"""The classifier a benchmark reads cells with: a model, screened for blasts as it is served
unless asked for alone (``--no-screen``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.settings import ABNORMAL_MODEL_PATH, DEFAULT_MODEL_PATH
from vision.model.classifier import CellClassifier


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH,
                        help="classifier weights (default: the shipped model)")
    parser.add_argument("--screen", type=Path, default=ABNORMAL_MODEL_PATH,
                        help="the model that screens every cell for blasts, as served")
    parser.add_argument("--no-screen", action="store_true", help="the model alone")


def served_classifier(args: argparse.Namespace, fast: bool = False) -> CellClassifier:
    """The classifier ``add_model_arguments``' options name (``fast``: bfloat16 first)."""
    return CellClassifier.from_artifact(args.model, "cpu", fast=fast,
                                        screen=None if args.no_screen else args.screen)
