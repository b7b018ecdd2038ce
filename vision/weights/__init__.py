"""The shipped weights, installed as package data: the cell classifiers and the red-cell centre
network, each a ``.safetensors`` file with its JSON card beside it."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
