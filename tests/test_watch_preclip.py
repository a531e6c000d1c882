"""``grad_norm_preclip`` whoever clips: torch's ``clip_grad_norm_``, the split ``get_total_norm`` +
``clip_grads_with_norm_`` that accelerate uses, a hand-written in-place clip, after ``GradScaler.unscale_``, with
gradient accumulation; and no pre-clip series when the loop does not touch the gradients. Every expected norm is
computed in the test from ``.grad`` at the moment it is meant to describe."""

import numpy as np
import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.probe import patches

STEPS = 3


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 4)).double()


def _loss(model, step, scale=10.0):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (16,), generator=g)
    return scale * nn.functional.cross_entropy(model(x), y)


def _norms(model):  # per layer, from .grad
    return [float(torch.cat([p.grad.reshape(-1) for p in model[i].parameters()]).norm()) for i in (0, 2)]


def _clip_torch(params, max_norm):
    torch.nn.utils.clip_grad_norm_(params, max_norm)


def _clip_split(params, max_norm):  # accelerate ≥ 1.16: never calls clip_grad_norm_
    from torch.nn.utils import clip_grads_with_norm_, get_total_norm

    clip_grads_with_norm_(params, max_norm, get_total_norm([p.grad for p in params]))


def _clip_by_hand(params, max_norm):
    total = torch.cat([p.grad.reshape(-1) for p in params]).norm()
    for p in params:
        p.grad.mul_(min(1.0, max_norm / float(total)))


@pytest.mark.parametrize("clip", [_clip_torch, _clip_split, _clip_by_hand], ids=["clip_grad_norm_",
                                                                              "clip_grads_with_norm_", "by-hand"])
@pytest.mark.parametrize("accumulate", [1, 2], ids=["one-batch", "accumulate-2"])
def test_preclip_is_the_accumulated_gradient_before_any_clip(clip, accumulate):
    if clip is _clip_split and not hasattr(torch.nn.utils, "clip_grads_with_norm_"):
        pytest.skip("this torch has no clip_grads_with_norm_")
    model = _model()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    pre, post = [], []
    with gw.watch(model, opt) as w:
        for step in range(STEPS):
            opt.zero_grad()
            for micro in range(accumulate):
                _loss(model, 10 * step + micro).backward()
            pre.append(_norms(model))
            clip(list(model.parameters()), 0.05)
            post.append(_norms(model))
            opt.step()
    h = w.history
    np.testing.assert_allclose(h.stat("grad_norm_preclip"), pre, rtol=1e-6)  # the history keeps float32
    np.testing.assert_allclose(h.stat("grad_norm"), post, rtol=1e-6)  # the history keeps float32
    assert np.linalg.norm(post, axis=1) == pytest.approx(0.05, rel=1e-5)


def test_no_preclip_series_when_the_loop_does_not_touch_the_gradients():
    _assert_untouched_steps_have_no_preclip(_model())


def _assert_untouched_steps_have_no_preclip(model, before_training=lambda model: None):
    """Trained without clipping: grad_norm is the gradient read from .grad after backward, and there is no
    pre-clip series (nothing changed the gradients between the backward and the step)."""
    opt = torch.optim.SGD(model.parameters(), 0.1)
    norms = []
    with gw.watch(model, opt) as w:
        before_training(model)
        for step in range(STEPS):
            opt.zero_grad()
            _loss(model, step).backward()
            norms.append(_norms(model))
            opt.step()
    h = w.history
    assert np.isnan(h.stat("grad_norm_preclip")).all()
    np.testing.assert_allclose(h.stat("grad_norm"), norms, rtol=1e-6)  # the history keeps float32


def test_a_gradient_changed_after_its_hook_is_measured_as_it_is_at_the_end_of_backward():
    """Like DDP's all-reduce, a later accumulate hook rewrites the gradient in place during the backward: the watch
    measures it as it is at the end of backward, and that is not a change made by the loop (no pre-clip)."""
    model = _model()

    def halve(p):
        p.grad.mul_(0.5)

    def add_hooks(model):  # they run inside the backward call, before it returns
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(halve)

    _assert_untouched_steps_have_no_preclip(model, add_hooks)


def test_gradscaler_preclip_values_are_unscaled():
    scaler_cls = patches._scaler_class()
    if scaler_cls is None:
        pytest.skip("this torch has no torch.amp.GradScaler")
    model = _model().float()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    scaler = scaler_cls("cpu", init_scale=1024.0)
    pre, post = [], []
    with gw.watch(model, opt) as w:
        for step in range(STEPS):
            opt.zero_grad()
            scaler.scale(_loss_float(model, step)).backward()
            scaler.unscale_(opt)
            pre.append(_norms(model))
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            post.append(_norms(model))
            scaler.step(opt)
            scaler.update()
    h = w.history
    assert h.meta["skipped_steps"] == []
    np.testing.assert_allclose(h.stat("grad_norm_preclip"), pre, rtol=1e-5)
    np.testing.assert_allclose(h.stat("grad_norm"), post, rtol=1e-5)
    assert min(min(p) for p in pre) > 0.05 * 10  # the pre-clip values are not the scaled ones
    assert max(max(p) for p in pre) < 1024 * 0.05


def _loss_float(model, step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 6, generator=g)
    y = torch.randint(0, 4, (16,), generator=g)
    return 10 * nn.functional.cross_entropy(model(x), y)


def test_watch_without_optimizer_before_clip_records_both():
    model = _model()
    pre = []
    with gw.watch(model) as w:
        for step in range(STEPS):
            model.zero_grad()
            _loss(model, step).backward()
            pre.append(_norms(model))
            w.step(before_clip=True)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
    h = w.history
    np.testing.assert_allclose(h.stat("grad_norm_preclip"), pre, rtol=1e-6)  # the history keeps float32
    np.testing.assert_allclose(h.stat("grad_norm"), pre, rtol=1e-6)  # the history keeps float32


def test_backward_is_restored_on_close_and_another_wrapper_is_kept():
    original = torch.autograd.backward
    model = _model()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with gw.watch(model, opt):
        pass
    assert torch.autograd.backward is original
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters()
               if getattr(p, "_post_accumulate_grad_hooks", None) is not None)
    calls = []

    def theirs(*args, **kwargs):  # another tool wraps backward while the watch is open
        calls.append(1)
        return wrapped(*args, **kwargs)

    try:
        with gw.watch(model, opt) as w:
            wrapped = torch.autograd.backward
            torch.autograd.backward = theirs
            for step in range(2):
                opt.zero_grad()
                _loss(model, step).backward()
                opt.step()
        assert torch.autograd.backward is theirs  # not taken away from them
        _loss(model, 0).backward()  # our wrapper under theirs does nothing now
        assert len(calls) == 3
        assert np.isfinite(w.history.stat("grad_norm")).all()
        with gw.watch(model, opt) as again:  # ours above theirs above our old one: the backward is measured once
            measured = []
            real = again._after_backward
            again._after_backward = lambda snapshot: (measured.append(1), real(snapshot))
            opt.zero_grad()
            _loss(model, 5).backward()
            assert measured == [1] and again._preclips.measured is not None
            opt.step()
        assert len(calls) == 4
    finally:
        torch.autograd.backward = original


def test_a_backward_that_does_not_reach_the_model_is_not_measured():
    """Another model's backward between this model's backward and its step: this watch's end-of-backward
    measurement stays the one of its own backward (its gradients were not changed by the other call)."""
    model, other = _model(), _model()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    norms = []
    with gw.watch(model, opt) as w:
        for step in range(STEPS):
            opt.zero_grad()
            _loss(model, step).backward()
            measured = w._preclips.measured
            _loss(other, step).backward()
            assert w._preclips.measured is measured
            norms.append(_norms(model))
            opt.step()
    np.testing.assert_allclose(w.history.stat("grad_norm"), norms, rtol=1e-6)


def test_a_backward_in_another_thread_is_not_this_watchs():
    """Runs trained in threads (the playground): once a watch has stepped in its thread, a backward call made in
    another thread does not measure its gradients, even when it reaches them."""
    import threading

    model = _model()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with gw.watch(model, opt) as w:
        opt.zero_grad()
        _loss(model, 0).backward()
        opt.step()  # the watch's thread is known from here
        opt.zero_grad()
        worker = threading.Thread(target=lambda: _loss(model, 1).backward())
        worker.start()
        worker.join()
        assert all(p.grad is not None for p in model.parameters())  # the other thread's backward reached them
        assert w._preclips.measured is None
        _loss(model, 2).backward()  # its own thread's: measured
        assert w._preclips.measured is not None
        opt.step()
