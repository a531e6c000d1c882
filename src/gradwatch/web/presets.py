"""One-click playground setups reproducing the seeds' experiments (``gradwatch lab NAME`` runs the full versions).

Each preset is a run ``a`` and, where the experiment is a comparison, a run ``b`` drawn over it. Settings
follow the experiments' own defaults (see their modules in :mod:`gradwatch.lab.experiments`), with fewer steps
so that they train in seconds to a minute on a laptop CPU.
"""

from __future__ import annotations

import math
from typing import Any

_PARALYSIS = dict(
    dataset="digits",
    depth=5,
    width=100,
    activation="sigmoid",
    init="normal",
    init_std=round(1 / math.sqrt(300), 5),
    optimizer="sgd",
    lr=0.1,
    batch_size=32,
    steps=500,
)
_INIT = dict(
    dataset="digits", depth=30, width=64, activation="relu", optimizer="momentum", lr=0.01, batch_size=64, steps=400
)
_BN = dict(
    dataset="digits",
    depth=3,
    width=100,
    activation="sigmoid",
    init="normal",
    init_std=0.1,
    optimizer="sgd",
    lr=0.5,
    batch_size=60,
    steps=600,
)
_RESIDUAL = dict(
    dataset="digits",
    depth=32,
    width=32,
    activation="relu",
    init="he_normal",
    norm="batch",
    optimizer="momentum",
    lr=0.05,
    batch_size=64,
    steps=300,
)
_ACTIVATIONS = dict(
    dataset="digits", depth=8, width=64, init="xavier_normal", optimizer="sgd", lr=0.05, batch_size=32, steps=500
)
# explicit activation and init: a page filling its controls from the MLP defaults must not turn the tanh RNN into a
# ReLU/He one; n_train and n_test are shared by both runs (the same training and test sets)
_ADDING = dict(
    dataset="adding",
    seq_len=30,
    depth=1,
    width=16,
    n_train=2000,
    n_test=1000,
    batch_size=50,
    optimizer="adam",
    lr=0.01,
    steps=400,
    activation="tanh",
    init="xavier_uniform",
)

PRESETS: list[dict[str, Any]] = [
    {
        "name": "paralysis",
        "seed": "001",
        "title": "Network paralysis",
        "text": "5 × 100 sigmoid, weights N(0, 0.058²), SGD: the first layer gets about 10⁴× less gradient than "
        "the output and the net does not learn. Overlay: the same net with ReLU and He init.",
        "a": _PARALYSIS,
        "b": {**_PARALYSIS, "activation": "relu", "init": "he_normal"},
    },
    {
        "name": "xavier-vs-he",
        "seed": "001",
        "title": "Xavier vs He at 30 layers",
        "text": "30 ReLU layers: with Xavier (std √(1/n)) each layer halves the signal's variance and the loss "
        "stays at chance; He (√(2/n)) keeps it and trains.",
        "a": {**_INIT, "init": "xavier_normal"},
        "b": {**_INIT, "init": "he_normal"},
    },
    {
        "name": "batchnorm",
        "seed": "001",
        "title": "Batch norm off / on",
        "text": "3 × 100 sigmoid, N(0, 0.1²), SGD η = 0.5 (Ioffe & Szegedy's MNIST net): without BN the first layer "
        "gets about 1/100 of the output layer's gradient and learning is slow; with BN it trains fast.",
        "a": _BN,
        "b": {**_BN, "norm": "batch"},
    },
    {
        "name": "residual",
        "seed": "003",
        "title": "Plain vs residual at 32 layers",
        "text": "32 ReLU layers with batch norm: the plain net trains far worse than the same net with skip "
        "connections (degradation).",
        "a": _RESIDUAL,
        "b": {**_RESIDUAL, "residual": True},
    },
    {
        "name": "sigmoid-vs-relu",
        "seed": "003, 004",
        "title": "Sigmoid vs ReLU",
        "text": "8 layers, Xavier init, SGD: the sigmoid's gradients vanish toward the input and it does not learn; "
        "ReLU's reach the first layer and it trains.",
        "a": {**_ACTIVATIONS, "activation": "sigmoid"},
        "b": {**_ACTIVATIONS, "activation": "relu"},
    },
    {
        "name": "rnn-vs-lstm",
        "seed": "002",
        "title": "RNN vs LSTM on the adding problem",
        "text": "Adding problem with T = 30: the LSTM learns to add the two marked numbers, the tanh RNN lags far "
        "behind.",
        "a": {**_ADDING, "model": "rnn"},
        "b": {**_ADDING, "model": "lstm"},
    },
]
