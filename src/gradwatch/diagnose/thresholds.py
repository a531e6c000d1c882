"""When a per-layer number becomes a finding: every threshold a named field with its default and its source."""

from __future__ import annotations

from pydantic import Field

from gradwatch.config import StrictModel


class Thresholds(StrictModel):
    """Thresholds of :func:`gradwatch.diagnose.diagnose`. Defaults in brackets.

    Layers are compared through scale-free numbers, never raw per-element gradients across layers of different
    type and size: the *relative gradient* ‖g‖/‖θ‖ of a layer (its learning speed under SGD: the step is
    lr·‖g‖/‖θ‖ of the weights), the update ratio ‖Δθ‖/‖θ‖ (Karpathy's rule of thumb: about 1e-3 is healthy),
    and the backward gains along depth.
    """

    vanishing_ratio: float = Field(
        1e-2,
        gt=0,
        lt=1,
        description="[1e-2] vanishing: the best relative gradient of a layer and every layer farther from the loss "
        "is below this fraction of the median relative gradient of the quarter of the layers nearest the "
        "loss (SageMaker Debugger's VanishingGradient rule uses an absolute 1e-7; a ratio is independent "
        "of the loss scale, and a median of one large head)",
    )
    vanishing_ratio_residual: float = Field(
        1e-4,
        gt=0,
        lt=1,
        description="[1e-4] the same for a model with skip connections (ResNets, transformers): identity paths carry "
        "the gradient past every block, so the usual gap between a head and the body is not a decay "
        "through depth; only a far larger one is reported",
    )
    exploding_ratio: float = Field(
        1e2,
        gt=1,
        description="[1e2] exploding (with backward gains, stats='full'): the gradient reaching a layer's output is "
        "this many times the one at the output layer",
    )
    spike_factor: float = Field(
        10.0,
        gt=1,
        description="[10] exploding event: the total gradient norm (before clipping) is this many times its median "
        "over the previous spike_window steps and over the whole run (a gradient-norm spike, as in the "
        "loss/gradient spike monitors of LLM training recipes)",
    )
    spike_factor_adaptive: float = Field(
        1e2,
        gt=1,
        description="[1e2] the same under an adaptive optimizer (Adam, RMSprop…), whose step does not grow with "
        "the gradient: only a larger jump is an explosion there",
    )
    spike_window: int = Field(20, ge=3, description="[20] recorded steps of history a spike is compared with")
    explode_relative: float = Field(
        1e2,
        gt=0,
        description="[1e2] exploding at any step, the first included: the model's gradient norm is this many times "
        "its weight norm (healthy training with a mean loss: 1e-3 to 1)",
    )
    large_update_ratio: float = Field(
        1.0,
        gt=0,
        description="[1.0] large updates: one optimizer step changes a layer's weights by more than this fraction of "
        "their norm (Karpathy's rule of thumb puts healthy updates near 1e-3)",
    )
    vector_rms_floor: float = Field(
        1e-2,
        gt=0,
        description="[1e-2] vectors (biases, gains, LayerScale, norm scales) are judged apart from matrices: their "
        "update is compared with their norm or with this RMS, whichever is larger, so a gain initialised "
        "at 1e-5 by design (LayerScale) that Adam moves by lr per step is not a too-large update",
    )
    stalled_ratio: float = Field(1e-6, gt=0, description="[1e-6] update_ratio below this: stalled updates")
    saturation_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] act_saturation above this: saturation")
    dead_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="[0.5] act_dead above this: dead units (SageMaker Debugger's DeadRelu rule flags a layer when "
        "this fraction of its units is inactive)",
    )
    min_weight_rms: float = Field(
        1e-6,
        gt=0,
        description="[1e-6] layers whose weights' RMS is below this (zero-initialised) have no meaningful relative "
        "gradient or update ratio and are left out of those comparisons",
    )
    persist_fraction: float = Field(0.5, gt=0, le=1, description="[0.5] share of measured steps a state must hold on")
    min_episode: int = Field(3, ge=1, description="[3] consecutive recorded steps a state must last to be an episode")
