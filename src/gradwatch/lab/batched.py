"""Train many small feed-forward nets as one batched model: ``torch.func.vmap`` over ``stack_module_state``.

Members of a group share everything but their seed, initialisation (``init``, ``init_std``, ``init_mode``,
``bias_init``) and optimizer step size (``lr``, ``momentum``): the same architecture, data set, batch size and
budget. Each member is built, shuffled and stepped exactly as :func:`gradwatch.lab.train` does it — the model
from ``build_model`` with a generator seeded by its seed, the data split of its seed, ``epoch_order`` drawn from
the same generator — and SGD / momentum / Nesterov / Adam are written out elementwise with a per-member
learning rate, as ``torch.optim`` computes them. So a member's metrics and weights equal the unbatched run's
within float tolerance (tests/test_sweep_batched.py), while one vmapped step does the work of B.

Plain MLPs only: no normalisation, residual, dropout, clipping, penalties, constraints, schedules, hard-example
sampling, augmentation, early stopping, pretraining, LSUV or PReLU (:func:`batchable` says why not). There is
no watch attached: the per-layer gradient norm ``grad_norm`` is computed for every member at every step (it is
what the sweep's first-to-last layer ratio reads), the other watch statistics are not recorded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gradwatch.lab.config import Config
from gradwatch.lab.records import failed_record, grad_ratio
from gradwatch.stat_names import GRAD_NORM
from gradwatch.store.keys import config_key

VARYING = ("seed", "init", "init_std", "init_mode", "bias_init", "lr", "momentum")  # may differ inside a group
MAX_GROUP = 64  # members per batched model
EVAL_CHUNK = 1024  # examples per batched forward pass when evaluating
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which lab.train uses


def batchable(cfg: Config) -> str | None:
    """None when ``cfg`` can be trained batched; otherwise the reason it cannot."""
    checks = [
        (cfg.model == "mlp", "model is not mlp"),
        (cfg.norm == "none", "normalisation"),
        (not cfg.residual, "residual connections"),
        (cfg.dropout == 0, "dropout"),
        (cfg.affine == "dense", "affine"),
        (cfg.clip_norm is None and cfg.clip_value is None, "gradient clipping"),
        (cfg.max_spectral_norm is None and cfg.max_abs_weight is None, "weight constraints"),
        (cfg.l1 == 0 and cfg.l2 == 0 and cfg.weight_decay == 0, "penalties / weight decay"),
        (cfg.hard_examples == 0, "hard-example sampling"),
        (cfg.augment_noise == 0 and cfg.augment_shift == 0, "augmentation"),
        (cfg.early_stopping is None, "early stopping"),
        (cfg.schedule == "none", "learning-rate schedule"),
        (cfg.pretrain == "none", "pretraining"),
        (cfg.init != "lsuv", "LSUV init"),
        (cfg.activation != "prelu", "PReLU has parameters"),
    ]
    return next((why for ok, why in checks if not ok), None)


def group_key(cfg: dict[str, Any]) -> str:
    return config_key({k: v for k, v in cfg.items() if k not in VARYING})


def group_configs(configs: list[dict[str, Any]], max_size: int = MAX_GROUP) -> list[list[dict[str, Any]]]:
    """Configs grouped for batched training (order kept); an unbatchable config is a group of its own."""
    groups: dict[str, list[list[dict[str, Any]]]] = {}
    out: list[list[dict[str, Any]]] = []
    for c in configs:
        if batchable(Config(**c)) is not None:
            out.append([c])
            continue
        bucket = groups.setdefault(group_key(c), [])
        if not bucket or len(bucket[-1]) >= max_size:
            bucket.append([])
            out.append(bucket[-1])
        bucket[-1].append(c)
    return out


@dataclass
class BatchedResult:
    records: list[dict[str, Any]]  # one per member, as sweep workers return them
    params: dict[str, Tensor]  # final parameters, stacked [members, ...]
    layers: list[str]


def _layer_slices(names: list[str]) -> tuple[list[str], list[int]]:
    """Layer (module) names in order and, for each parameter, the index of its layer."""
    layers: list[str] = []
    index = []
    for n in names:
        mod = n.rsplit(".", 1)[0]
        if not layers or layers[-1] != mod:
            layers.append(mod)
        index.append(len(layers) - 1)
    return layers, index


class _Optim:
    """torch.optim's SGD (momentum, Nesterov, dampening 0) and Adam, elementwise on stacked parameters with
    one learning rate per member."""

    def __init__(self, cfgs: list[Config], params: dict[str, Tensor]):
        like = next(iter(params.values()))
        self.kind = cfgs[0].optimizer
        col = lambda v: torch.tensor(v, dtype=like.dtype, device=like.device)  # noqa: E731  [members]
        self.lr = col([c.lr for c in cfgs])
        self.mom = col([0.0 if c.optimizer == "sgd" else c.momentum for c in cfgs])
        self.state: dict[str, list[Tensor]] = {}
        self.t = 0

    @staticmethod
    def _b(v: Tensor, like: Tensor) -> Tensor:
        return v.reshape(-1, *([1] * (like.dim() - 1)))  # [members] → [members, 1, …] to broadcast

    @torch.no_grad()
    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor]) -> None:
        self.t += 1
        for name, p in params.items():
            g, lr = grads[name], self._b(self.lr, p)
            if self.kind == "adam":
                m, v = self.state.setdefault(name, [torch.zeros_like(p), torch.zeros_like(p)])
                m.lerp_(g, 1 - ADAM_BETAS[0])
                v.mul_(ADAM_BETAS[1]).addcmul_(g, g, value=1 - ADAM_BETAS[1])
                bc1, bc2 = 1 - ADAM_BETAS[0] ** self.t, 1 - ADAM_BETAS[1] ** self.t
                denom = (v.sqrt() / math.sqrt(bc2)).add_(ADAM_EPS)
                p.sub_(lr / bc1 * m / denom)
                continue
            mom = self._b(self.mom, p)
            if self.kind != "sgd":
                if name not in self.state:
                    self.state[name] = [g.clone()]
                else:
                    self.state[name][0].mul_(mom).add_(g)
                buf = self.state[name][0]
                g = g + mom * buf if self.kind == "nesterov" else buf
            p.sub_(lr * g)


def train_batched(configs: list[dict[str, Any]], dtype: torch.dtype | str | None = None) -> BatchedResult:
    """Train the members of one group together; ``dtype`` (e.g. float64) converts parameters and data."""
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    from gradwatch.lab.models import build_model
    from gradwatch.lab.prepare import prepare, task_loss
    from gradwatch.lab.sampling import epoch_order

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    cfgs = [Config(**c) for c in configs]
    for c in cfgs:
        why = batchable(c)
        if why is not None:
            raise ValueError(f"config with seed {c.seed} cannot be trained batched: {why}")
    if len({group_key(c.to_dict()) for c in cfgs}) != 1:
        raise ValueError("batched members must differ only in " + ", ".join(VARYING))
    cfg0 = cfgs[0]
    prepared = {}
    for c in cfgs:
        if c.seed not in prepared:
            prepared[c.seed] = prepare(c)
    seeds = list(prepared)
    d0 = prepared[seeds[0]]
    conv = (lambda t: t.to(dtype)) if dtype is not None else (lambda t: t)  # noqa: E731
    x_train = conv(torch.stack([prepared[s].x_train for s in seeds]))  # [data sets, n, features]
    y_train = torch.stack([prepared[s].y_train for s in seeds])
    x_test = conv(torch.stack([prepared[s].x_test for s in seeds]))
    y_test = torch.stack([prepared[s].y_test for s in seeds])
    member_data = torch.tensor([seeds.index(c.seed) for c in cfgs])  # [members]
    gens, models = [], []
    with torch.random.fork_rng(devices=[]):
        for c in cfgs:
            torch.manual_seed(c.seed)
            gens.append(torch.Generator().manual_seed(c.seed))
            net = build_model(c, d0.n_in, d0.n_out, image_shape=d0.image_shape, generator=gens[-1])
            models.append(net.to(dtype) if dtype is not None else net)
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    base = models[0]
    loss_name = cfg0.loss_name
    layers, layer_of = _layer_slices(list(params))
    n_layers = len(layers)

    def loss_fn(p, b, x, y):
        return task_loss(functional_call(base, (p, b), (x,)), y, loss_name)

    step_fn = vmap(grad_and_value(loss_fn))
    forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)))
    opt = _Optim(cfgs, params)
    members = len(cfgs)
    n = x_train.shape[1]
    example_loss = torch.ones(n)
    metrics: list[list[dict[str, Any]]] = [[] for _ in cfgs]
    history: list[list[tuple[int, int, str, float]]] = [[] for _ in cfgs]
    norms_all: list[Tensor] = []
    step = 0

    @torch.no_grad()
    def evaluate(x: Tensor, y: Tensor) -> tuple[list[float], list[float | None]]:
        xs, ys = x[member_data], y[member_data]  # [members, n, …]
        outs = torch.cat(
            [forward(params, buffers, xs[:, i : i + EVAL_CHUNK]) for i in range(0, xs.shape[1], EVAL_CHUNK)], dim=1
        )
        losses = [float(task_loss(outs[m], ys[m], loss_name)) for m in range(members)]
        acc = [
            None if ys.is_floating_point() else float((outs[m].argmax(-1) == ys[m]).float().mean())
            for m in range(members)
        ]
        return losses, acc

    for epoch in range(1, cfg0.epochs + 1):
        start = time.perf_counter()
        orders = [epoch_order(n, cfg0.batch_size, cfg0.shuffle, 0.0, example_loss, g) for g in gens]
        losses, gnorms, layer_norms, steps = [], [], [], []
        for b in range(len(orders[0])):
            idx = torch.stack([o[b] for o in orders])  # [members, batch]
            xb = x_train[member_data[:, None], idx]  # [members, batch, features]
            yb = y_train[member_data[:, None], idx]
            grads, loss = step_fn(params, buffers, xb, yb)
            sq = torch.stack([g.pow(2).flatten(1).sum(1) for g in grads.values()], dim=1)  # [members, params]
            per_layer = (
                torch.zeros(members, n_layers, dtype=sq.dtype).index_add_(1, torch.tensor(layer_of), sq).sqrt()
            )  # [members, layers]
            gnorms.append(sq.sum(1).sqrt())
            layer_norms.append(per_layer)
            losses.append(loss.detach())
            opt.step(params, grads)
            step += 1
            steps.append(step)
            if cfg0.steps is not None and step >= cfg0.steps:
                break
        seconds = time.perf_counter() - start
        loss_t, gn_t, ln_t = torch.stack(losses), torch.stack(gnorms), torch.stack(layer_norms)  # [steps, …]
        norms_all.append(ln_t)
        train_eval, test_eval = evaluate(x_train, y_train), evaluate(x_test, y_test)
        for m in range(members):
            row = {
                "epoch": epoch,
                "step": step,
                "loss": float(loss_t[:, m].mean()),
                "lr": cfgs[m].lr,
                "grad_norm": float(gn_t[:, m].mean()),
                "grad_norm_max": float(gn_t[:, m].max()),
                "seconds": seconds,
                "train_loss": train_eval[0][m],
                "accuracy": train_eval[1][m],
                "test_loss": test_eval[0][m],
                "test_accuracy": test_eval[1][m],
            }
            metrics[m].append({k: v for k, v in row.items() if v is not None})
            vals = ln_t[:, m].tolist()
            history[m].extend((s, j, GRAD_NORM, v) for s, row_ in zip(steps, vals) for j, v in enumerate(row_))
        if cfg0.steps is not None and step >= cfg0.steps:
            break
    norms = torch.cat(norms_all).double().numpy()  # [steps, members, layers]
    records = []
    for m, c in enumerate(cfgs):
        final = metrics[m][-1]
        kept = ("epoch", "step", "loss", "accuracy", "test_loss", "test_accuracy")
        summary: dict[str, Any] = {k: final[k] for k in kept if k in final}
        summary.update(source=d0.source, grad_ratio=grad_ratio(norms[:, m]), batched=members)
        records.append(
            {
                "config": c.to_dict(),
                "status": "completed",
                "error": None,
                "metrics": metrics[m],
                "layers": layers,
                "history": history[m],
                "summary": summary,
                "started": time.time(),
            }
        )
    return BatchedResult(records, params, layers)


def train_batched_records(configs: list[dict[str, Any]], dtype: Any = None) -> list[dict[str, Any]]:
    """:func:`train_batched`'s records (what a sweep worker returns); a failure fails every member."""
    try:
        return train_batched(configs, dtype).records
    except Exception as exc:
        return [failed_record(c, f"{type(exc).__name__}: {exc}") for c in configs]
