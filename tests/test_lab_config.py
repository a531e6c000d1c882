"""Every bad input of the issue raises one ValueError naming the parameter, the value and what is allowed."""

import pytest

from gradwatch import lab
from gradwatch.errors import ConfigError
from gradwatch.lab.models import initialize, mlp

BAD = [
    ({"colour": "red"}, "colour", "unknown parameter"),
    ({"depth": 0}, "depth", "≥ 1"),
    ({"dropout": 1.5}, "dropout", "< 1"),
    ({"activation": "swish"}, "activation", "sigmoid"),
    ({"init": "kaiming_magic"}, "init", "xavier_uniform"),
    ({"model": "transformer"}, "model", "mlp"),
    ({"dataset": "cifar"}, "dataset", "adding"),
    ({"model": "rnn", "dataset": "adding", "seq_len": 10, "tbptt": [5, 50]}, "tbptt", "T = 10"),
    ({"model": "rnn", "dataset": "adding", "tbptt": [5, 3]}, "tbptt", "k2"),
    ({"model": "rnn", "dataset": "adding", "tbptt": [0, 3]}, "tbptt", "≥ 1"),
    ({"tbptt": 3}, "tbptt", "rnn, lstm or gru"),
    ({"model": "lstm", "dataset": "adding", "pascanu": 1.0}, "pascanu", "rnn or gru"),
    ({"layer_drop": 0.2}, "layer_drop", "residual"),
    ({"early_stopping": 3}, "early_stopping", "val_fraction"),
    ({"dataset": "adding", "loss": "cross_entropy"}, "loss", "mse"),
    ({"dataset": "adding", "affine": "conv"}, "affine", "image"),
    ({"model": "lstm", "norm": "batch"}, "norm", "mlp only"),
    ({"model": "mlp", "dataset": "copy_memory"}, "dataset", "every step"),
    ({"dataset": "adding", "seq_len": 4}, "seq_len", "T ≥ 6"),
    ({"sizes": [10, 0]}, "sizes", "≥ 1"),
    ({"lr": 0}, "lr", "> 0"),
    ({"clip_norm": -1.0}, "clip_norm", "> 0"),
    ({"max_spectral_norm": 0.0}, "max_spectral_norm", "> 0"),
    ({"preprocess": "whiten"}, "preprocess", "zca"),
    ({"pretrain": "autoencoder", "residual": True}, "pretrain", "plain mlp"),
    ({"device": "gpu7"}, "device", "torch device"),
    ({"model": "esn", "init": "lsuv"}, "init", "random init"),
    ({"augment_shift": 2, "dataset": "mnist1d"}, "augment_shift", "image"),
]


@pytest.mark.parametrize("kwargs, param, allowed", BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_parameter_value_and_allowed(kwargs, param, allowed):
    with pytest.raises(ConfigError) as info:
        lab.Config(**kwargs)
    err = info.value
    assert isinstance(err, ValueError) and err.param == param
    assert allowed in str(err) and "\n" not in str(err)
    assert repr(kwargs.get(param, err.value)) in str(err)


def test_lsuv_without_data_is_refused():
    with pytest.raises(ConfigError, match=r"init='lsuv' is not allowed: .*data"):
        initialize(mlp([3, 4, 2]), "lsuv")


def test_model_dependent_defaults():
    assert lab.Config().activation == "relu" and lab.Config().init == "he_normal"
    rnn = lab.Config(model="rnn", dataset="adding")
    assert rnn.activation == "tanh" and rnn.init == "xavier_uniform"
    assert lab.Config(model="rnn", dataset="adding", activation="relu").activation == "relu"


def test_tbptt_single_number_means_k1_equals_k2():
    assert lab.Config(model="gru", dataset="adding", tbptt=5).tbptt == [5, 5]


def test_config_round_trips_through_json():
    cfg = lab.Config(model="gru", dataset="temporal_order", seq_len=30, tbptt=[5, 10], clip_norm=1.0)
    assert lab.Config(**cfg.to_dict()) == cfg
