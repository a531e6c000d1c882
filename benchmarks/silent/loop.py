"""A watched run of a few optimizer steps, and the pieces of the loops the bugs alter."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

import gradwatch as gw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the zoo's data and models

from zoo import data, models

from .registry import Case

__all__ = ["F", "data", "digit_batches", "image_batches", "models", "presence_batches", "text_batches", "watched"]


def watched(model, optimizer, step: Callable[[int], None], steps: int, layers=(), **options) -> Case:
    """Run ``step(t)`` for t = 0 … steps-1 under ``gw.watch(model, optimizer, **options)``; the findings."""
    with gw.watch(model, optimizer=optimizer, **options) as w:
        for t in range(steps):
            step(t)
    return Case([f.to_dict() for f in w.diagnose().findings], tuple(layers))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def digit_batches(size: int = 32):
    x, y = data.digits()
    return data.batches(x, y, size, gen())


def image_batches(size: int = 32, pixels: int = 8):
    x, y = data.digit_images(pixels)
    return data.batches(x, y, size, gen())


def text_batches(seq: int = 16, size: int = 16):
    return data.text_batches(seq, size, gen())


def presence_batches(vocab: int = 32, seq: int = 16, size: int = 16):
    return data.presence_batches(vocab, seq, size, gen())
