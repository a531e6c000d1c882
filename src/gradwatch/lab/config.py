"""``lab.Config``: one validated configuration for every network and training procedure of the seeds.

Every field is a knob of the lectures (the seed it comes from is in its description). Field names are the
CLI flags with underscores (``--init-std`` ↔ ``init_std``). An invalid value or combination raises one
:class:`~gradwatch.errors.ConfigError` (a ``ValueError``) naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gradwatch.config import FINITE, StrictModel
from gradwatch.errors import ConfigError, check_choice
from gradwatch.lab.data import DATASETS
from gradwatch.lab.tasks import IMAGE_DATASETS, REGRESSION_TASKS, SEQUENCE_TASKS, TASKS, check_seq_len
from gradwatch.nn.activations import ACTIVATIONS
from gradwatch.nn.init import INITS

MAX_SEED = 2**63 - 1  # torch and numpy take seeds in [0, 2⁶³)
MODELS = ("mlp", "rnn", "lstm", "gru", "esn")
RECURRENT = ("rnn", "lstm", "gru", "esn")
DATASET_NAMES = tuple(DATASETS) + tuple(TASKS)
LAB_INITS = tuple(INITS) + ("lsuv",)


class Config(StrictModel):
    """Everything that defines one training run. ``Config(**cfg.to_dict())`` rebuilds it exactly."""

    model_config = FINITE

    # --- architecture --------------------------------------------------------------------------------------
    model: Literal["mlp", "rnn", "lstm", "gru", "esn"] = Field("mlp", description="mlp, rnn, lstm, gru or esn")
    depth: int = Field(3, ge=1, description="hidden layers (stacked recurrent layers for rnn/lstm/gru)")
    width: int = Field(100, ge=1, description="units per hidden layer (reservoir size for esn)")
    sizes: list[int] | None = Field(None, description="explicit hidden widths, overrides depth/width; [] = linear")
    activation: str = Field(
        "relu",
        description="sigmoid, tanh, relu, leaky_relu, prelu, elu, selu, softsign, "
        "gelu, linear (seeds 003, 004) [default: relu; tanh for rnn, esn]",
    )
    alpha: float | None = Field(None, description="slope α of leaky_relu / prelu / elu [default: theirs]")
    init: str = Field(
        "he_normal",
        description="normal, uniform, glorot_standard, xavier_uniform, xavier_normal, "
        "he_normal, he_uniform, orthogonal, spectral, lsuv "
        "[default: he_normal; xavier_uniform for recurrent models]",
    )
    init_std: float = Field(0.01, gt=0, description="σ of init=normal, a of init=uniform U[-a, a]")
    init_mode: Literal["fan_in", "fan_out"] = Field("fan_in", description="fan used by he_normal / he_uniform")
    bias_init: float = Field(0.0, description="initial value of every bias")
    norm: Literal["none", "batch", "layer"] = Field("none", description="normalisation of hidden layers (seed 001)")
    norm_position: Literal["before", "after"] = Field("before", description="norm before or after the activation")
    residual: bool = Field(
        False, description="z_{j+1} = z_j + σ(W_j z_j + b_j) (seed 003); projection if widths differ"
    )
    layer_drop: float = Field(
        0.0, ge=0, lt=1, description="stochastic depth: drop a residual branch with this probability (seed 003)"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="probability p of zeroing a hidden unit (seed 001)")
    dropout_variant: Literal["inverted", "seed001"] = Field(
        "inverted", description="inverted: scale by 1/(1-p) in training (PyTorch); seed001: scale by 1-p at test"
    )
    affine: Literal["dense", "sparse", "conv"] = Field(
        "dense", description="affine maps (seed 003): dense, fixed random sparsity, conv+avg-pool front"
    )
    density: float = Field(0.1, gt=0, le=1, description="fraction of nonzero weights for affine=sparse")
    conv_channels: int = Field(8, ge=1, description="channels of the conv front end (affine=conv)")
    # --- recurrent (seed 002) ------------------------------------------------------------------------------
    recurrent_init: str | None = Field(None, description="init of recurrent matrices [default: init]")
    spectral_radius: float | None = Field(
        None, gt=0, description="scale W_rec to this spectral radius ρ (esn default 0.95)"
    )
    input_scale: float = Field(1.0, gt=0, description="esn: input weights ~ U[-s, s]")
    ridge: float = Field(1e-6, ge=0, description="esn: ridge-regression penalty of the readout")
    tbptt: list[int] | None = Field(
        None, description="truncated BPTT k1,k2: every k1 steps back-propagate k2 steps (one number k: k1 = k2 = k)"
    )
    pascanu: float = Field(0.0, ge=0, description="weight of Pascanu et al. 2013's regulariser Ω (rnn, gru)")
    # --- data ----------------------------------------------------------------------------------------------
    dataset: str = Field(
        "digits", description="digits, mnist, mnist1d, adding, temporal_order, copy_memory, teacher_student, polynomial"
    )
    data_dir: str | None = Field(None, description="directory of the MNIST files")
    download: bool = Field(
        False,
        description="download MNIST into the cache when its files are not found (also allowed by GRADWATCH_DOWNLOAD=1)",
    )
    scale: Literal["unit", "standardize", "none"] = Field("unit", description="input scaling of image data")
    preprocess: Literal["none", "center", "standardize", "pca", "zca"] = Field(
        "none", description="fitted on the training split only (seed 001)"
    )
    seq_len: int = Field(20, ge=2, description="sequence length T of the synthetic sequence tasks")
    n_train: int = Field(2000, ge=1, description="training examples of synthetic tasks")
    n_test: int = Field(500, ge=1, description="test examples of synthetic tasks")
    input_dim: int = Field(10, ge=1, description="teacher_student: input dimension")
    teacher_width: int = Field(32, ge=1, description="teacher_student: hidden units of the teacher")
    degree: int = Field(3, ge=0, description="polynomial: degree D of the fitted polynomial (seed 004)")
    noise: float = Field(0.1, ge=0, description="σ of the label noise of regression tasks")
    val_fraction: float = Field(0.0, ge=0, lt=1, description="share of the training split held out for validation")
    augment_noise: float = Field(0.0, ge=0, description="images: σ of Gaussian noise added to training inputs")
    augment_shift: int = Field(0, ge=0, description="images: random shifts of up to this many pixels")
    # --- training ------------------------------------------------------------------------------------------
    loss: Literal["cross_entropy", "mse"] | None = Field(
        None, description="[default: cross_entropy for classes, mse for regression]"
    )
    optimizer: Literal["sgd", "momentum", "nesterov", "adam"] = Field(
        "adam", description="sgd, momentum, nesterov, adam"
    )
    lr: float = Field(1e-3, gt=0, description="learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum of optimizer=momentum/nesterov")
    schedule: Literal["none", "step", "cosine"] = Field("none", description="learning-rate schedule, per epoch")
    lr_step: int = Field(10, ge=1, description="schedule=step: epochs between decays")
    lr_gamma: float = Field(0.1, gt=0, le=1, description="schedule=step: decay factor")
    batch_size: int = Field(64, ge=1, description="examples per step")
    epochs: int = Field(10, ge=1, description="passes over the training split")
    steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps")
    shuffle: bool = Field(True, description="reshuffle the training split every epoch (seed 001)")
    hard_examples: float = Field(
        0.0, ge=0, le=1, description="share of each batch sampled in proportion to the example's last loss (seed 001)"
    )
    clip_norm: float | None = Field(None, gt=0, description="clip the global gradient norm (seeds 000, 002)")
    clip_value: float | None = Field(None, gt=0, description="clip every gradient element to [-c, c]")
    max_spectral_norm: float | None = Field(
        None, gt=0, description="project every weight to ‖W‖₂ ≤ c after each step (seed 003)"
    )
    max_abs_weight: float | None = Field(None, gt=0, description="project every weight to |w| ≤ c (seed 003)")
    l1: float = Field(0.0, ge=0, description="λ of the L1 penalty λ Σ|w| (seed 001)")
    l2: float = Field(0.0, ge=0, description="λ of the L2 penalty λ/2 Σw² (seeds 001, 004)")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay w ← w − lr·wd·w")
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better validation loss; keep the best weights"
    )
    pretrain: Literal["none", "autoencoder"] = Field(
        "none", description="greedy layer-wise autoencoder pretraining (seed 000, remedy f)"
    )
    pretrain_epochs: int = Field(5, ge=1, description="epochs per autoencoder")
    pretrain_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the autoencoders")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of data split, weights, shuffling and dropout")
    device: str = Field("cpu", description="torch device")
    watch_every: int = Field(1, ge=1, description="record the watch statistics every this many steps")

    @model_validator(mode="before")
    @classmethod
    def _model_defaults(cls, data: Any) -> Any:
        """Defaults that depend on the model: tanh and Xavier for recurrent nets, ReLU and He for MLPs."""
        if isinstance(data, dict) and data.get("model") in RECURRENT:
            data = dict(data)
            if data.get("model") in ("rnn", "esn"):
                data.setdefault("activation", "tanh")
            data.setdefault("init", "xavier_uniform")
        return data

    # --- single-field checks ---------------------------------------------------------------------------------
    @field_validator("activation", "init", "recurrent_init", "dataset")
    @classmethod
    def _choice(cls, v: str | None, info: ValidationInfo) -> str | None:
        choices = {"activation": ACTIVATIONS, "init": LAB_INITS, "recurrent_init": INITS, "dataset": DATASET_NAMES}
        field = info.field_name
        assert field is not None  # always set for a field validator
        return None if v is None else check_choice(field, v, choices[field])

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(s < 1 for s in v):
            raise ConfigError("sizes", v, "every hidden width must be ≥ 1")
        return v

    @field_validator("tbptt", mode="before")
    @classmethod
    def _tbptt(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v, v]
        if isinstance(v, (list, tuple)) and len(v) == 1:  # one number k: k1 = k2 = k
            v = [v[0], v[0]]
        if v is not None and (not isinstance(v, (list, tuple)) or len(v) != 2):
            raise ConfigError("tbptt", v, "expected k1,k2 (two positive integers) or one integer k")
        if v is not None and any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in v):
            raise ConfigError("tbptt", list(v), "k1 and k2 must be integers ≥ 1")
        return None if v is None else list(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from gradwatch.nn.devices import check_device

        return check_device("device", v)

    # --- combinations -------------------------------------------------------------------------------------
    @model_validator(mode="after")
    def _combinations(self) -> Config:
        recurrent = self.model in RECURRENT
        check_seq_len(self.dataset, self.seq_len)
        if self.tbptt is not None:
            if self.model not in ("rnn", "lstm", "gru"):
                raise ConfigError("tbptt", self.tbptt, "truncated BPTT needs model rnn, lstm or gru")
            k1, k2 = self.tbptt
            t = self.sequence_length
            if t is not None and (k2 > t or k1 > t):
                raise ConfigError("tbptt", self.tbptt, f"k1 and k2 must be ≤ the sequence length T = {t}")
            if k2 < k1:
                raise ConfigError(
                    "tbptt", self.tbptt, "k2 (steps back-propagated) must be ≥ k1 (steps between updates)"
                )
        if self.pascanu > 0 and self.model not in ("rnn", "gru"):
            raise ConfigError("pascanu", self.pascanu, "the regulariser is defined for model rnn or gru")
        if self.pascanu > 0 and self.tbptt is not None:
            raise ConfigError("pascanu", self.pascanu, "use it with full BPTT (tbptt unset)")
        if self.layer_drop > 0 and not self.residual:
            raise ConfigError("layer_drop", self.layer_drop, "stochastic depth needs residual=true")
        if self.early_stopping is not None and self.val_fraction == 0:
            raise ConfigError("early_stopping", self.early_stopping, "needs a validation split: val_fraction > 0")
        if recurrent and (self.norm != "none" or self.residual or self.affine != "dense" or self.sizes is not None):
            name, value = next(
                (n, getattr(self, n))
                for n, bad in (
                    ("norm", self.norm != "none"),
                    ("residual", self.residual),
                    ("affine", self.affine != "dense"),
                    ("sizes", self.sizes is not None),
                )
                if bad
            )
            raise ConfigError(name, value, f"applies to model=mlp only (model={self.model})")
        if self.model == "mlp" and self.dataset == "copy_memory":
            raise ConfigError(
                "dataset", self.dataset, "copy_memory needs an output at every step: model rnn, lstm, gru or esn"
            )
        if self.affine == "conv" and self.dataset not in IMAGE_DATASETS:
            raise ConfigError("affine", self.affine, "conv needs image data: dataset " + " or ".join(IMAGE_DATASETS))
        if self.dataset in REGRESSION_TASKS and self.loss == "cross_entropy":
            raise ConfigError("loss", self.loss, f"{self.dataset} is a regression task: use mse")
        if (self.augment_noise > 0 or self.augment_shift > 0) and self.dataset not in IMAGE_DATASETS:
            raise ConfigError(
                "augment_shift" if self.augment_shift else "augment_noise",
                self.augment_shift or self.augment_noise,
                "augmentation is for image data: dataset " + " or ".join(IMAGE_DATASETS),
            )
        if self.pretrain != "none" and (self.model != "mlp" or self.residual or self.affine == "conv"):
            raise ConfigError(
                "pretrain", self.pretrain, "layer-wise pretraining needs a plain mlp (no residual, no conv front end)"
            )
        if self.model == "esn" and self.init == "lsuv":
            raise ConfigError("init", self.init, "the esn reservoir is not trained: use a random init")
        from gradwatch.lab.memory import check_config_size

        check_config_size(self)
        return self

    # --- derived values -----------------------------------------------------------------------------------
    @property
    def hidden_sizes(self) -> list[int]:
        """Widths of the hidden layers: ``sizes`` when given, else ``[width] * depth``."""
        return list(self.sizes) if self.sizes is not None else [self.width] * self.depth

    @property
    def recurrent(self) -> bool:
        return self.model in RECURRENT

    @property
    def sequence_length(self) -> int | None:
        """T of a sequence task (copy_memory's sequences are T + 20 long); None for other data."""
        if self.dataset not in SEQUENCE_TASKS:
            return None
        return self.seq_len + 20 if self.dataset == "copy_memory" else self.seq_len

    @property
    def loss_name(self) -> str:
        if self.loss is not None:
            return self.loss
        return "mse" if self.dataset in REGRESSION_TASKS else "cross_entropy"
