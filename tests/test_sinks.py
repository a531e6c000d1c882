"""TensorBoard and MLflow sinks: one key per statistic and layer, the values of a hand computation at every
step, NaN written as NaN (never dropped), histograms and the diagnosis."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gradwatch as gw
from gradwatch.errors import ConfigError
from gradwatch.sinks import Metrics

STEPS, NAN_STEP = 6, 3
LAYERS = ["0", "2"]


def _train(sinks, stats=("grad_norm", "grad_abs_mean", "nonfinite", "grad_hist")):
    """A 2-layer net trained STEPS steps; at NAN_STEP one gradient element of layer "0" is set to NaN (and the
    optimizer's step then skipped for that layer). Returns the hand-computed norms {step: {layer: norm}}."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    hand = {}
    with gw.watch(model, opt, stats=list(stats), sample_every=2, flush_every=4, sinks=sinks):
        for step in range(STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            if step == NAN_STEP:
                model[0].weight.grad[0, 0] = float("nan")
            hand[step] = {name: float(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1)
                                                                          for p in model[int(name)].parameters()])))
                          for name in LAYERS}
            opt.step()
            if step == NAN_STEP:
                with torch.no_grad():
                    model[0].weight.nan_to_num_(0.0)
    return hand


def test_metrics_sink_passes_every_layer_and_keeps_nan():
    got = {}
    texts = []
    hand = _train([Metrics(lambda m, step: got.__setitem__(step, m), text=texts.append)])
    assert sorted(got) == list(range(STEPS))
    for step, metrics in got.items():  # grad_abs_mean only where it was sampled (every 2nd step): no NaN filler
        every = ("grad_norm", "nonfinite") + (("grad_abs_mean",) if step % 2 == 0 else ())
        assert set(metrics) == {f"gradwatch/{s}/{l}" for s in every for l in LAYERS}
        for layer in LAYERS:
            want, value = hand[step][layer], metrics[f"gradwatch/grad_norm/{layer}"]
            assert (math.isnan(value) and math.isnan(want)) or value == pytest.approx(want, rel=1e-5)
    assert math.isnan(got[NAN_STEP]["gradwatch/grad_norm/0"]) and got[NAN_STEP]["gradwatch/nonfinite/0"] == 1
    assert len(texts) == 1 and texts[0].splitlines()[0].startswith("1 finding(s): nonfinite")


def test_tensorboard_sink_writes_scalars_histograms_and_diagnosis(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (gradwatch[tensorboard])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    hand = _train([gw.sinks.TensorBoard(tmp_path / "tb")])
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {f"gradwatch/{s}/{l}" for s in ("grad_norm", "grad_abs_mean", "nonfinite") for l in LAYERS} == \
        set(tags["scalars"])
    for layer in LAYERS:
        points = events.Scalars(f"gradwatch/grad_norm/{layer}")
        assert [p.step for p in points] == list(range(STEPS))  # the NaN step is there, not dropped
        for p in points:
            want = hand[p.step][layer]
            assert (math.isnan(p.value) and math.isnan(want)) or p.value == pytest.approx(want, rel=1e-5)
    assert math.isnan(events.Scalars("gradwatch/grad_norm/0")[NAN_STEP].value)
    for layer in LAYERS:  # a sampled statistic has points where it was sampled, none (no NaN filler) elsewhere
        points = events.Scalars(f"gradwatch/grad_abs_mean/{layer}")
        assert [p.step for p in points] == [0, 2, 4] and all(math.isfinite(p.value) for p in points)
    # histograms at the sampled steps (every 2nd), counting every parameter of the layer
    hists = events.Histograms("gradwatch/log10_abs_grad/2")
    assert [h.step for h in hists] == [0, 2, 4] and hists[0].histogram_value.num == 8 * 2 + 2
    (text,) = events.Tensors("gradwatch/diagnosis/text_summary")
    assert "nonfinite" in text.tensor_proto.string_val[0].decode()


def test_mlflow_sink_logs_to_a_local_file_store_and_keeps_nan(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (gradwatch[mlflow])")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    sink = gw.sinks.MLflow(tracking_uri=uri, experiment="gw-test", run_name="tiny")
    hand = _train([sink])
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(sink.run_id)
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == {f"gradwatch/{s}/{l}" for s in ("grad_norm", "grad_abs_mean", "nonfinite")
                                     for l in LAYERS}
    for layer in LAYERS:
        points = sorted(client.get_metric_history(sink.run_id, f"gradwatch/grad_norm/{layer}"), key=lambda m: m.step)
        assert [m.step for m in points] == list(range(STEPS))
        for m in points:
            want = hand[m.step][layer]
            assert (math.isnan(m.value) and math.isnan(want)) or m.value == pytest.approx(want, rel=1e-5)
    assert math.isnan(next(m.value for m in client.get_metric_history(sink.run_id, "gradwatch/grad_norm/0")
                           if m.step == NAN_STEP))
    (tmp_path / "dl").mkdir()
    local = client.download_artifacts(sink.run_id, "gradwatch/diagnosis.txt", str(tmp_path / "dl"))
    text = open(local, encoding="utf-8").read()
    assert text.startswith("1 finding(s): nonfinite")


def test_a_sink_that_is_not_one_is_refused():
    with pytest.raises(ConfigError, match="sinks"):
        gw.watch(nn.Linear(2, 2), sinks=["tensorboard"])


def test_config_without_a_store_is_refused():
    with pytest.raises(ConfigError, match="store"):
        gw.watch(nn.Linear(2, 2), config={"lr": 0.1})


class Broken:
    """A sink that raises on every call."""

    def __init__(self):
        self.calls = 0

    def write(self, history, steps, values):
        self.calls += 1
        raise OSError("disk full")

    def write_histograms(self, history, steps, counts):
        self.calls += 1
        raise OSError("disk full")

    def close(self, diagnosis):
        self.calls += 1
        raise OSError("disk full")


def test_a_sink_that_raises_is_switched_off_with_one_warning_and_training_goes_on():
    from gradwatch.probe.guard import HookFailureWarning

    broken, got = Broken(), {}
    with pytest.warns(HookFailureWarning) as record:
        hand = _train([broken, Metrics(lambda m, step: got.__setitem__(step, m))])
    messages = [str(r.message) for r in record if issubclass(r.category, HookFailureWarning)]
    assert len(messages) == 1 and "sink 'Broken'" in messages[0] and "OSError: disk full" in messages[0]
    assert broken.calls == 1  # switched off after its first failure (histograms go first, at the first flush)
    assert sorted(got) == sorted(hand) == list(range(STEPS))  # the other sink got every step: training went on


def test_a_failing_diagnosis_still_closes_the_sinks(monkeypatch):
    from gradwatch.probe import Watcher
    from gradwatch.probe.guard import HookFailureWarning

    def boom(self, **_):
        raise RuntimeError("rule crashed")

    monkeypatch.setattr(Watcher, "diagnose", boom)
    texts = []
    with pytest.warns(HookFailureWarning, match="the diagnosis for the sinks failed"):
        _train([Metrics(lambda m, step: None, text=texts.append)])
    assert len(texts) == 1  # the sink was still closed (and given no diagnosis)


def test_tensorboard_has_no_nan_where_a_statistic_was_not_sampled(tmp_path):
    """Default statistics with sample_every=3 and a loop that does not clip: weight_norm, grad_abs_mean, ...
    appear at the sampled steps only, grad_norm_preclip not at all, and no point is NaN (no NaN gradient here)."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (gradwatch[tensorboard])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 5), torch.randint(0, 2, (16,))
    with gw.watch(model, opt, sample_every=3, flush_every=4, sinks=[gw.sinks.TensorBoard(tmp_path)]) as w:
        for _ in range(10):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    assert not any("grad_norm_preclip" in t for t in tags)  # never recorded: not written
    h = w.history
    for stat in ("grad_norm", "nonfinite", "grad_abs_mean", "grad_abs_max", "weight_norm", "update_ratio"):
        for j, layer in enumerate(LAYERS):
            points = events.Scalars(f"gradwatch/{stat}/{layer}")
            assert all(math.isfinite(p.value) for p in points), stat
            want = h.sampled_steps(stat).tolist()  # the history's own record of where it has values
            assert [p.step for p in points] == want == (list(range(10)) if stat in ("grad_norm", "nonfinite")
                                                         else [0, 3, 6, 9])
            assert [p.value for p in points] == pytest.approx(h.stat(stat, sampled_only=True)[:, j].tolist(),
                                                              rel=1e-6)


def test_mlflow_inside_an_active_run_logs_to_that_run_only(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (gradwatch[mlflow])")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as active:
            sink = gw.sinks.MLflow(tracking_uri=uri)  # the active run's store, named explicitly
            assert sink.run_id == active.info.run_id
            _train([sink])
            with pytest.raises(ConfigError, match="tracking_uri"):  # another store: refused, not another run
                gw.sinks.MLflow(tracking_uri=(tmp_path / "elsewhere").as_uri())
        client = MlflowClient(tracking_uri=uri)
        runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
        assert [r.info.run_id for r in runs] == [active.info.run_id]
        assert "gradwatch/grad_norm/0" in runs[0].data.metrics
        assert client.get_experiment_by_name("gradwatch") is None  # no run made elsewhere
    finally:
        mlflow.set_tracking_uri(None)


def test_the_probe_alone_records_only_and_says_where_sinks_go():
    from gradwatch.probe import watch as record_only

    with pytest.raises(ConfigError, match=r"sinks.*gradwatch\.watch"):
        record_only(nn.Linear(2, 2), sinks=[Metrics(lambda m, s: None)])
    assert gw.watch is __import__("gradwatch.watching", fromlist=["watch"]).watch
