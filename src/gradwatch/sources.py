"""The five lectures gradwatch follows, and how user-facing text names them: by what they are (author, book
chapter, course and title), never by an internal number.

Inside the code base each lecture has a three-digit code (``000`` … ``004``, the order they were collected in);
:func:`cite` turns text that still says "seed 001" or "seeds 000, 002" into the lectures' short names, for help
texts and output written before the names existed. The docs list the lectures once, with what each contributes
(docs/sources.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Lecture:
    short: str  # how text cites it, e.g. "Nielsen, ch. 5"
    title: str  # the lecture as its slides name it
    contributes: str  # what gradwatch takes from it


LECTURES: dict[str, Lecture] = {
    "000": Lecture(
        "Nielsen, ch. 5",
        "“Proč je těžké učit hluboké sítě” (Why deep networks are hard to train), a Czech lecture after "
        "Michael Nielsen, Neural Networks and Deep Learning, ch. 5",
        "learning speed per layer, the single-neuron chain ∂C/∂b₁ = σ'(z₁) w₂ σ'(z₂) …, max σ' = 1/4, "
        "the interval-width problem, and the remedies: activation, batch norm, initialisation, skip "
        "connections, clipping, layer-wise pretraining",
    ),
    "001": Lecture(
        "Polykovskiy, Technosphere lecture 5",
        "“Глубинные нейронные сети, часть 1” (Deep neural networks, part 1), Technosphere lecture 5, "
        "Daniil Polykovskiy, 2017",
        "network paralysis (mean |gradient| per layer), Glorot saturation, preprocessing, shuffling, "
        "L1/L2, dropout, batch normalisation with its backward pass and folding, Xavier and He "
        "derivations",
    ),
    "002": Lecture(
        "Deep Learning A-Z, “The Vanishing Gradient Problem”",
        "“The Vanishing Gradient Problem”, Deep Learning A-Z (SuperDataScience)",
        "recurrent networks: Hochreiter's bound, Pascanu's products of Jacobians, truncated BPTT, "
        "penalties, clipping, initialisation, echo state networks, LSTM",
    ),
    "003": Lecture(
        "Giselsson, “Deep Learning”",
        "“Deep Learning”, lecture by Pontus Giselsson",
        "losses, activations, dense/sparse/conv affine maps, residual networks and degradation, "
        "stochastic depth, backpropagation as reverse-mode differentiation, the 0.25ⁿ bound, weight "
        "constraints ‖W‖₂ ≤ 1",
    ),
    "004": Lecture(
        "Bursuc, “The problems with depth”",
        "“14.2 The problems with depth”, Deep Learning Do It Yourself (dataflowr), Andrei Bursuc",
        "Glorot's histograms, ReLU and dying ReLU, LeakyReLU, PReLU, ELU, SELU, ReLU vs tanh speed, "
        "under/over-fitting, L2 = weight decay",
    ),
}

_CODES = r"\d{3}(?:\s*(?:,|/|and|&)\s*\d{3})*"
_REFERENCE = re.compile(rf"\b[Ss]eeds?\s+({_CODES})('s)?(?:\s*:\s*|\s*,?\s+remedy\s+([a-f])\b)?")
_BARE = re.compile(r"\((\d{3}(?:,\s*\d{3})*)\)")
_BEYOND = re.compile(r"\b(?:seed\s+)?(?:beyond|not (?:stated )?in) the seeds\b\s*", re.IGNORECASE)
_LECTURE_SEEDS = re.compile(r"\b(?:the )?lecture seeds\b|\bthe seeds\b")


def names(codes: str) -> str:
    """``"000, 002"`` → ``"Nielsen, ch. 5; Deep Learning A-Z, …"`` (unknown codes are kept as they are)."""
    found = re.findall(r"\d{3}", codes)
    return "; ".join(LECTURES[c].short if c in LECTURES else c for c in found)


def cite(text: str) -> str:
    """``text`` with every "seed 001", "seeds 000, 002", "Seed 000's", "(001)" and "beyond the seeds" replaced by
    the lectures' names (remedy letters become "remedy a" of Nielsen, ch. 5)."""

    def reference(m: re.Match) -> str:
        out = names(m.group(1))
        if m.group(3):
            out += f", remedy {m.group(3)}"
        if m.group(2):
            out += "'s" if ";" not in out else ""
        return out + (": " if m.group(0).rstrip().endswith(":") else "")

    text = _REFERENCE.sub(reference, text)
    text = _BARE.sub(
        lambda m: (
            f"({names(m.group(1))})" if all(c in LECTURES for c in re.findall(r"\d{3}", m.group(1))) else m.group(0)
        ),
        text,
    )
    text = _BEYOND.sub("", text)
    text = _LECTURE_SEEDS.sub("the lectures", text)
    return re.sub(r"\(\s*\(", "(", re.sub(r"\)\s*\)", ")", text))  # "(beyond the seeds (X))" → "(X)"
