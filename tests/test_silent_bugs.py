"""Silent training bugs (docs/silent-bugs.md): each kind found from an injected fault, at the step and on the
layers the test knows independently, and not found on the legitimate loop it imitates."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradwatch as gw
from gradwatch.diagnose import diagnose
from gradwatch.probe import History

STEPS = 12


def _model(dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    parts = [nn.Linear(6, 8), nn.Tanh()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(8, 3)]
    return nn.Sequential(*parts)


def _batch(t: int):
    g = torch.Generator().manual_seed(t)
    return torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)


def _layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _train(model, opt, steps=STEPS, zero=True, before=None, after=None, **options):
    with gw.watch(model, opt, **options) as w:
        for t in range(steps):
            if before is not None:
                before(t)
            if zero:
                opt.zero_grad()
            x, y = _batch(t)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if after is not None:
                after(t)
    return w.diagnose()


# ---- missing_zero_grad -----------------------------------------------------------------------------------------
def test_missing_zero_grad_names_every_layer_from_the_first_backward_after_a_step():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    d = _train(model, opt, zero=False)
    # the fault, by autograd: after two steps without zero_grad, .grad is the sum of both batches' gradients
    probe = _model()
    grads = [torch.autograd.grad(F.cross_entropy(probe(_batch(t)[0]), _batch(t)[1]), probe[0].weight)[0]
             for t in (0, 1)]
    p_opt = torch.optim.SGD(probe.parameters(), lr=0.0)
    for t in (0, 1):
        F.cross_entropy(probe(_batch(t)[0]), _batch(t)[1]).backward()
        p_opt.step()
    torch.testing.assert_close(probe[0].weight.grad, grads[0] + grads[1])
    f = d["missing_zero_grad"]
    assert f.step == 1 and f.layers == _layers(model)
    assert "zero_grad()" in str(f.remedies[0])


def test_missing_zero_grad_that_starts_mid_run_is_found_within_the_check_cadence():
    from gradwatch.probe.silent import CHECK_EVERY

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    start = 7  # zero_grad() is called on steps 0-6 only: step 7's backward adds to step 6's gradient
    with gw.watch(model, opt) as w:
        for t in range(start + 2 * CHECK_EVERY + 1):
            if t < start:
                opt.zero_grad()
            x, y = _batch(t)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    f = w.diagnose()["missing_zero_grad"]
    assert start <= f.step <= start + CHECK_EVERY + 1 and f.layers == _layers(model)


def test_accumulation_within_a_step_set_to_none_false_and_a_gan_are_not_missing_zero_grad():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with gw.watch(model, opt) as w:
        for t in range(STEPS):
            opt.zero_grad(set_to_none=False)  # zeroed in place
            for k in range(3):  # three micro-batches per optimizer step
                x, y = _batch(3 * t + k)
                (F.cross_entropy(model(x), y) / 3).backward()
            opt.step()
    assert "missing_zero_grad" not in w.diagnose()
    # a GAN: the generator's backward reaches the discriminator between the discriminator's own steps
    torch.manual_seed(0)
    G, D = nn.Linear(4, 6), nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.01)
    with gw.watch(D, opt_d) as w:
        for t in range(STEPS):
            opt_d.zero_grad()
            real, fake = torch.randn(8, 6), G(torch.randn(8, 4)).detach()
            (F.softplus(-D(real)) + F.softplus(D(fake))).mean().backward()
            opt_d.step()
            opt_g.zero_grad()
            F.softplus(-D(G(torch.randn(8, 4)))).mean().backward()  # adds to D's .grad after D's step
            opt_g.step()
    assert "missing_zero_grad" not in w.diagnose()


def test_an_optimizer_stepped_with_a_closure_is_not_missing_zero_grad_and_stops_being_checked():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with gw.watch(model, opt) as w:
        for t in range(STEPS):
            def closure(t=t):
                opt.zero_grad()
                x, y = _batch(t)
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss
            opt.step(closure)  # the step hooks run before the closure's backward
        assert not w._silent.stale._armed  # no tensor hook left on the parameters
    assert "missing_zero_grad" not in w.diagnose()


# ---- no_gradient ------------------------------------------------------------------------------------------------
class _Branches(nn.Module):
    def __init__(self, cut: bool, every: int = 1):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(6, 4), nn.Linear(6, 4), nn.Linear(8, 3)
        self.cut, self.every, self.t = cut, every, 0

    def forward(self, x):
        fb = self.b(x)
        if self.cut:
            fb = fb.detach()
        elif self.t % self.every:
            fb = torch.zeros_like(fb)  # branch b used on every `every`-th step only
        self.t += 1
        return self.head(torch.cat([self.a(x), fb], 1))


def test_no_gradient_names_a_detached_branch_and_not_a_branch_used_every_few_steps():
    model = _Branches(cut=True)
    d = _train(model, torch.optim.Adam(model.parameters(), lr=1e-3))
    assert model.b.weight.grad is None and model.a.weight.grad is not None  # the fault, read directly
    f = d["no_gradient"]
    assert f.layers == ["b"] and f.step == 0
    assert f.evidence["params"] == ["b.weight", "b.bias"]
    model = _Branches(cut=False, every=4)
    assert "no_gradient" not in _train(model, torch.optim.Adam(model.parameters(), lr=1e-3))


def test_a_frozen_parameter_is_not_no_gradient():
    model = _model()
    model[0].requires_grad_(False)
    assert "no_gradient" not in _train(model, torch.optim.SGD(model.parameters(), lr=0.01))


# ---- not_in_optimizer -------------------------------------------------------------------------------------------
def test_not_in_optimizer_names_a_head_replaced_after_the_optimizer_was_built():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model[2] = nn.Linear(8, 3)  # after the optimizer was built
    owned = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) not in owned for p in model[2].parameters())  # the fault, read from the optimizer
    d = _train(model, opt)
    f = d["not_in_optimizer"]
    assert f.layers == ["2"] and f.step == 0
    assert "add_param_group" in str(f.remedies[0])


def test_a_parameter_stepped_by_an_unwatched_optimizer_is_not_in_optimizer_only_when_nothing_steps_it():
    model = _model()
    body = torch.optim.SGD(model[0].parameters(), lr=0.01)
    head = torch.optim.Adam(model[2].parameters(), lr=1e-3)

    def also_head(t):
        head.step()
        head.zero_grad()
    assert "not_in_optimizer" not in _train(model, body, after=also_head)  # watched: body only


# ---- eval_mode --------------------------------------------------------------------------------------------------
def test_eval_mode_from_the_step_after_validation_left_the_model_in_eval():
    model = _model(dropout=0.2)
    d = _train(model, torch.optim.SGD(model.parameters(), lr=0.01), after=lambda t: model.eval() if t == 4 else None)
    f = d["eval_mode"]
    assert f.step == 5 and f.layers == ["(model)"]
    assert f.evidence["lines"][0].startswith(f"{STEPS - 5} optimizer step(s)")


def test_frozen_batch_norm_in_a_training_model_is_not_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    model[1].eval()  # running statistics frozen on purpose while the rest trains
    assert "eval_mode" not in _train(model, torch.optim.SGD(model.parameters(), lr=0.01))


# ---- clip_ineffective -------------------------------------------------------------------------------------------
def _amp(unscale_first: bool):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    seen = []
    with gw.watch(model, opt) as w:
        for t in range(STEPS):
            opt.zero_grad()
            x, y = _batch(t)
            scaler.scale(F.cross_entropy(model(x), y)).backward()
            if unscale_first:
                scaler.unscale_(opt)
            seen.append(float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm()))
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
    return w.diagnose(), seen, model


def test_clip_ineffective_when_clipping_before_unscale_and_not_after_it():
    d, scaled_norms, model = _amp(unscale_first=False)
    _, norms, _ = _amp(unscale_first=True)
    assert scaled_norms[0] == pytest.approx(1024.0 * norms[0], rel=1e-4)  # the clip saw scale × ‖g‖
    f = d["clip_ineffective"]
    assert f.step == 0 and f.layers == _layers(model) and f.evidence["scale"] == 1024.0
    assert "unscale_" in str(f.remedies[0])
    assert "clip_ineffective" not in _amp(unscale_first=True)[0]


# ---- lr_collapse ------------------------------------------------------------------------------------------------
def test_lr_collapse_from_a_per_epoch_schedule_stepped_per_batch_and_not_from_a_cosine_to_zero():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    d = _train(model, opt, steps=20, before=lambda t: lrs.append(opt.param_groups[0]["lr"]),
               after=lambda t: sched.step())
    first = next(t for t, lr in enumerate(lrs) if lr <= 1e-3 * max(lrs[:t] or [0]))  # closed form: 0.1·0.1^(t//2)
    f = d["lr_collapse"]
    assert f.step == first and f.layers == _layers(model)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    assert "lr_collapse" not in _train(model, opt, steps=100, after=lambda t: cosine.step())


# ---- amp_skipping -----------------------------------------------------------------------------------------------
def test_amp_skipping_when_every_step_overflows():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu")
    skipped = []
    with gw.watch(model, opt) as w:
        for t in range(STEPS):
            opt.zero_grad()
            x, y = _batch(t)
            scale = scaler.get_scale()
            scaler.scale(F.cross_entropy(model(x) * float("inf"), y)).backward()
            scaler.step(opt)
            scaler.update()
            skipped.append(scaler.get_scale() < scale)
    assert all(skipped)  # the scaler's own record
    f = w.diagnose()["amp_skipping"]
    assert f.step == 0 and f.evidence["skipped_steps"] == list(range(STEPS))


# ---- the notes travel with the history ----------------------------------------------------------------------------
def test_the_silent_notes_survive_a_json_round_trip():
    model = _Branches(cut=True)
    with gw.watch(model, torch.optim.SGD(model.parameters(), lr=0.01)) as w:
        for t in range(STEPS):
            x, y = _batch(t)
            F.cross_entropy(model(x), y).backward()  # no zero_grad either
            w.optimizers[0].step()
    back = History.from_dict(json.loads(json.dumps(w.history.to_dict())))
    assert diagnose(back).kinds() == w.diagnose().kinds() == ["missing_zero_grad", "no_gradient"]


def test_a_watch_without_optimizer_records_no_notes():
    model = _model()
    with gw.watch(model) as w:
        for t in range(3):
            x, y = _batch(t)
            F.cross_entropy(model(x), y).backward()
            w.step()
    assert "silent" not in w.history.meta and w.diagnose().healthy


# ---- replica_divergence (2 gloo processes) ------------------------------------------------------------------------
def _ln_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3))


def _data(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)


def _ddp(model):
    return nn.parallel.DistributedDataParallel(model)


def _ddp_ln_unsynced(model):
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ["1.weight", "1.bias"])
    return nn.parallel.DistributedDataParallel(model)


def test_replica_divergence_names_the_layer_left_out_of_the_all_reduce(tmp_path):
    from distributed import watched_ranks

    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    healthy = watched_ranks(tmp_path / "ok", _ddp, _ln_model, _data, 4)
    broken = watched_ranks(tmp_path / "bad", _ddp_ln_unsynced, _ln_model, _data, 4)
    for h in healthy:
        assert "replica_divergence" not in diagnose(h)
    # each rank stepped the LayerNorm on its own half of the batch: the two halves' gradients differ, so the
    # replicas' weights differ from the first update on (read on each rank from the notes: its checksum spread)
    f = diagnose(broken[0])["replica_divergence"]
    assert f.layers == ["1"] and f.step == 1


# ---- the benchmark's bugs ----------------------------------------------------------------------------------------
def test_the_benchmark_holds_at_least_20_bugs_each_citing_its_report_and_the_judge_is_strict():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from silent import BUGS, Truth
    from silent.judge import WITHIN, judge

    from gradwatch.diagnose import SILENT_KINDS

    assert len(BUGS) >= 20
    for b in BUGS.values():
        assert b.kind in SILENT_KINDS and b.step >= 0
        assert any(mark in b.source for mark in ("#", "OSDI", "Stack Overflow")), b.name  # a cited report
    truth = Truth("no_gradient", 3, ("b",))
    found = {"kind": "no_gradient", "step": 3 + WITHIN, "layers": ["b"]}
    assert judge("x", truth, [found]).detected
    assert not judge("x", truth, [{**found, "step": 4 + WITHIN}]).detected  # too late
    assert not judge("x", truth, [{**found, "layers": ["a", "b"]}]).detected  # not exactly the bug's layers
