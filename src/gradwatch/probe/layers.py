"""Which modules of a model are layers, what they are called, and which activation follows each.

A *layer* is a module that owns trainable parameters directly (``module.parameters(recurse=False)``):
``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.LSTM``, ``nn.MultiheadAttention`` (its in-projection),
``nn.LayerNorm``, ``nn.Embedding``… Containers such as ``nn.Sequential`` or ``nn.TransformerEncoderLayer`` own
none and are not layers. Layers are listed in registration order (``named_modules()``), which for the usual
``Sequential`` / ``__init__`` style is the input side first, and named by their module path.

The elementwise activation module registered right after a layer (before the next layer) is taken to be the
activation that *follows* it: its input z is where σ'(z) is evaluated for ``act_saturation`` and its backward
pass is the activation-derivative part of the layer's backward gain. Activations applied functionally
(``F.relu`` inside ``forward``) are not seen; those statistics are then NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gradwatch.errors import ConfigError
from gradwatch.nn.activations import ACTIVATIONS, Activation

# nn module type → (name in gradwatch.nn.activations, how to read its α)
_ACTIVATION_MODULES: dict[type, tuple[str, str | None]] = {
    nn.Sigmoid: ("sigmoid", None),
    nn.Tanh: ("tanh", None),
    nn.ReLU: ("relu", None),
    nn.LeakyReLU: ("leaky_relu", "negative_slope"),
    nn.ELU: ("elu", "alpha"),
    nn.SELU: ("selu", None),
    nn.Softsign: ("softsign", None),
    nn.GELU: ("gelu", None),
    nn.SiLU: ("silu", None),
    nn.Mish: ("mish", None),
    nn.Hardtanh: ("hardtanh", None),
    nn.ReLU6: ("relu6", None),
    nn.Hardswish: ("hardswish", None),
    nn.Hardsigmoid: ("hardsigmoid", None),
}
# activation classes of Hugging Face transformers (transformers.activations) and timm (timm.layers.activations),
# recognised by class name and package without importing either
_NAMED_ACTIVATIONS: dict[str, str] = {
    "GELUActivation": "gelu",
    "NewGELUActivation": "gelu_tanh",
    "GELUTanh": "gelu_tanh",
    "PytorchGELUTanh": "gelu_tanh",
    "FastGELUActivation": "gelu_tanh",
    "AccurateGELUActivation": "gelu_tanh",
    "QuickGELUActivation": "quick_gelu",
    "QuickGELU": "quick_gelu",
    "SiLUActivation": "silu",
    "Swish": "silu",
    "SiLU": "silu",
    "MishActivation": "mish",
    "Mish": "mish",
    "GELU": "gelu",
    "HardSwish": "hardswish",
    "HardSigmoid": "hardsigmoid",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
}
_NAMED_PACKAGES = ("transformers", "timm")
_RECURRENT = (nn.RNNBase, nn.RNNCellBase)
_CHANNEL_FIRST = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
)


@dataclass(frozen=True)
class FollowingActivation:
    """The activation module that follows a layer, with σ' from :mod:`gradwatch.nn.activations`."""

    name: str  # module path
    module: nn.Module
    fn: Activation
    alpha: float | None

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn.derivative(z, self.alpha)

    @property
    def max_derivative(self) -> float:
        return self.fn.max_derivative(self.alpha)

    def saturated(self, z: torch.Tensor, level: float) -> torch.Tensor:
        """Where σ is saturated at z (see :meth:`Activation.saturated`: ReLU's zero half never is)."""
        return self.fn.saturated(z, level, self.alpha)

    def saturated_fraction(self, z: torch.Tensor, level: float) -> torch.Tensor:
        """The fraction of z where σ is saturated (0-d float32; NaN for an empty z). An activation without a flat
        tail (ReLU, GELU, …) gives 0 without testing z elementwise."""
        if self.fn.saturation == "none":
            return z.new_tensor(0.0 if z.numel() else float("nan"), dtype=torch.float32)
        return self.saturated(z.float(), level).float().mean()


@dataclass
class Layer:
    """One watched layer: its path, module, the parameters that count toward its statistics."""

    name: str
    module: nn.Module
    params: list[nn.Parameter]
    activation: FollowingActivation | None = None
    hookable: bool = True  # False for parameters owned by the root module: its "output" is the model's
    aliases: list[str] = field(default_factory=list)  # other modules that use the same parameters (tied weights)
    numel: int = field(init=False)

    def __post_init__(self):
        self.numel = sum(p.numel() for p in self.params)

    @property
    def kind(self) -> str:
        return type(self.module).__name__ if self.hookable else "Parameter"

    @property
    def recurrent(self) -> bool:
        return isinstance(self.module, _RECURRENT)

    @property
    def saturation_source(self) -> str | None:
        """What ``act_saturation`` measures for this layer: the following activation's name, ``"gates"`` for a
        recurrent layer (its sigmoid/tanh gates, :mod:`gradwatch.probe.gates`), or None (not measured)."""
        if self.recurrent:
            return "gates"
        return self.activation.fn.name if self.activation is not None else None

    @property
    def unit_dim(self) -> int:
        """The dimension of the layer's output that indexes its units (channels for conv/norm, else last)."""
        return 1 if isinstance(self.module, _CHANNEL_FIRST) else -1


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


def as_activation(module: nn.Module) -> tuple[Activation, float | None] | None:
    """(activation, α) if ``module`` is an elementwise activation gradwatch knows σ' of, else None."""
    entry = _ACTIVATION_MODULES.get(type(module))
    if entry is None:
        name = _NAMED_ACTIVATIONS.get(type(module).__name__)
        if name is None or type(module).__module__.split(".")[0] not in _NAMED_PACKAGES:
            return None
        entry = (name, None)
    name, attr = entry
    if name == "gelu" and getattr(module, "approximate", "none") == "tanh":
        name = "gelu_tanh"
    if name == "hardtanh" and (module.min_val, module.max_val) != (-1.0, 1.0):
        return None  # only the default clamp to [-1, 1] is registered
    return ACTIVATIONS[name], (float(getattr(module, attr)) if attr else None)


def find_layers(model: nn.Module, param_names: tuple[str, ...] | None = None) -> list[Layer]:
    """The layers of ``model`` (input side first) with the activation following each.

    Every module that owns parameters is a layer, frozen ones included: a parameter without a gradient on a step
    is unmeasured (NaN) there, so a layer unfrozen later is watched from then on. A parameter shared by several
    modules (tied embeddings: GPT-2's ``wte`` and ``lm_head``) counts once, in the first module that owns it; the
    others are listed in that layer's ``aliases``. Parameters owned by the root module itself (a ViT's
    ``cls_token``, ``pos_embed``) are one layer each, named after the parameter, without module hooks.
    ``param_names`` keeps only parameters with those local names (e.g. ``("weight",)``) and layers that own one.
    """
    root = unwrap(model)
    layers: list[Layer] = []
    owner_of: dict[int, Layer] = {}  # id(parameter) -> the layer that counts it
    last: Layer | None = None
    for path, module in root.named_modules():
        named = [(n, p) for n, p in module.named_parameters(recurse=False) if param_names is None or n in param_names]
        shared = {owner_of[id(p)].name: owner_of[id(p)] for _, p in named if id(p) in owner_of}
        for layer in shared.values():
            layer.aliases.append(path)
        named = [(n, p) for n, p in named if id(p) not in owner_of]
        if module is root and next(root.children(), None) is not None:
            for n, p in named:
                layer = Layer(n, module, [p], hookable=False)
                owner_of[id(p)] = layer
                layers.append(layer)
            continue
        if named:
            last = Layer(path or type(root).__name__, module, [p for _, p in named])
            owner_of.update((id(p), last) for _, p in named)
            layers.append(last)
            continue
        act = as_activation(module)
        if act is not None and last is not None and last.activation is None and not shared:
            last.activation = FollowingActivation(path, module, *act)
    if not any(p.requires_grad for l in layers for p in l.params):
        raise ConfigError(
            "model",
            type(root).__name__,
            "it has no trainable parameters to watch"
            if param_names is None
            else f"no trainable parameter is named one of {list(param_names)}",
        )
    return layers
