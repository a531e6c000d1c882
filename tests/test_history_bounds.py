"""The bounded history: fixed size over a long run, spikes kept as window maxima, exact ends, round trips."""

import json

import numpy as np
import pytest

from gradwatch.errors import ConfigError
from gradwatch.probe.history import History

STATS = ["grad_norm", "nonfinite", "act_mean"]


def _feed(h, n_steps, chunk=50, spike_at=None, nan_at=None, check=False):
    """Rows like a watcher's flushes: grad_norm = 1 + step/1000 per layer, act_mean sampled every 10 steps."""
    for start in range(0, n_steps, chunk):
        steps = np.arange(start, min(start + chunk, n_steps))
        values = np.zeros((len(steps), len(STATS), 2))
        values[:, 0, :] = 1 + steps[:, None] / 1000
        values[:, 1, :] = 0
        values[:, 2, :] = np.where(steps[:, None] % 10 == 0, steps[:, None].astype(float), np.nan)
        if spike_at is not None and spike_at in steps:
            values[steps == spike_at, 0, 1] = 1e6
            values[steps == spike_at, 1, 0] = 3
        h.append(steps, values)
        if check:
            assert len(h) <= (h.max_rows or np.inf)


def test_60000_steps_fit_in_a_fixed_number_of_rows():
    h = History(["a", "b"], STATS)
    _feed(h, 60_000, check=True)  # never above the bound, after any flush
    assert len(h) <= 10_000 and h.n_recorded == 60_000 and h.downsampled
    spans = h.spans
    assert spans[0].tolist() == [0, 0] and spans[-1].tolist() == [59_999, 59_999]
    # rows tile the run: each row starts right after the previous one ends
    assert (spans[1:, 0] == spans[:-1, 1] + 1).all()
    # the last 2,000 steps are exact
    assert h.steps[-2000:].tolist() == list(range(58_000, 60_000))
    np.testing.assert_allclose(h.stat("grad_norm")[-1], [1 + 59.999] * 2)
    np.testing.assert_allclose(h.stat("grad_norm")[0], [1.0, 1.0])


def test_window_mean_min_max_equal_the_steps_they_cover():
    h = History(["a", "b"], STATS)
    _feed(h, 60_000)
    spans = h.spans
    r = int(np.flatnonzero(spans[:, 1] > spans[:, 0])[3])  # some window
    covered = np.arange(spans[r, 0], spans[r, 1] + 1)
    g = 1 + covered / 1000
    assert h.stat("grad_norm")[r, 0] == pytest.approx(g.mean(), rel=1e-6)
    assert h.stat("grad_norm", reduce="min")[r, 0] == pytest.approx(g.min(), rel=1e-6)
    assert h.stat("grad_norm", reduce="max")[r, 0] == pytest.approx(g.max(), rel=1e-6)
    sampled = covered[covered % 10 == 0].astype(float)  # NaN on the other steps is ignored
    assert h.stat("act_mean")[r, 0] == pytest.approx(sampled.mean(), rel=1e-6)
    assert h.stat("act_mean", reduce="sum")[r, 0] == pytest.approx(sampled.sum(), rel=1e-5)


def test_a_one_step_spike_survives_as_its_window_max():
    h = History(["a", "b"], STATS)
    _feed(h, 60_000, spike_at=12_345)
    r = int(np.flatnonzero((h.spans[:, 0] <= 12_345) & (h.spans[:, 1] >= 12_345))[0])
    assert h.spans[r, 1] > h.spans[r, 0]  # it is inside a window, not an exact row
    assert h.stat("grad_norm", reduce="max")[r, 1] == 1e6
    assert h.stat("grad_norm", reduce="max")[r, 0] < 100
    # the non-finite count defaults to the max: the event is never diluted
    assert h.stat("nonfinite")[r, 0] == 3 and h.stat("nonfinite").sum() == 3


def test_window_of_all_nan_is_nan_and_max_ignores_nan():
    h = History(["a"], ["x"], max_rows=14, recent_rows=4, head_rows=2)
    values = np.full((40, 1, 1), np.nan)
    values[20:, 0, 0] = np.arange(20.0)
    h.append(np.arange(40), values)
    x, hi = h.stat("x")[:, 0], h.stat("x", reduce="max")[:, 0]
    win = h.spans[:, 1] > h.spans[:, 0]
    assert np.isnan(x[win & (h.spans[:, 1] < 20)]).all()
    assert np.isfinite(hi[win & (h.spans[:, 0] >= 20)]).all()
    assert len(h) <= 14


def test_round_trip_through_json_keeps_windows_exactly():
    h = History(["a", "b"], STATS, max_rows=300, recent_rows=50, head_rows=5)
    _feed(h, 5_000, spike_at=777)
    back = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.spans.tolist() == h.spans.tolist()
    for name in STATS:
        for reduce in ("mean", "min", "max"):
            np.testing.assert_allclose(back.stat(name, reduce=reduce), h.stat(name, reduce=reduce), rtol=1e-6)
    _feed(back, 10)  # appending after a reload keeps working
    assert len(back) <= 300


def test_pandas_has_the_window_columns_when_downsampled():
    pytest.importorskip("pandas")
    h = History(["a", "b"], STATS, max_rows=300, recent_rows=50, head_rows=5)
    _feed(h, 5_000, spike_at=777)
    df = h.to_pandas()
    assert {"last_step", "min", "max"} <= set(df.columns)
    row = df[(df.stat == "grad_norm") & (df.layer == "b") & (df.step <= 777) & (df.last_step >= 777)]
    assert row["max"].item() == 1e6


def test_unbounded_keeps_every_step():
    h = History(["a", "b"], STATS, max_rows=None)
    _feed(h, 20_000)
    assert len(h) == 20_000 and not h.downsampled


def test_histograms_are_thinned_keeping_first_and_latest():
    h = History(["a"], ["x"], hist_edges=[0.0, 1.0], max_histograms=10)
    for step in range(0, 1000, 10):
        h.append_histogram(step, np.full((1, 5), step))
    steps = h.hist_steps
    assert len(steps) <= 10 and steps[0] == 0 and steps[-1] == 990
    assert h.histograms().shape == (len(steps), 1, 1) and h.hist_outside().shape == (len(steps), 1, 4)


@pytest.mark.parametrize("kwargs", [{"max_rows": 0}, {"max_rows": 10, "recent_rows": 9}, {"head_rows": -1},
                                    {"max_histograms": 1}], ids=str)
def test_bad_bounds_raise_config_errors(kwargs):
    with pytest.raises(ConfigError):
        History(["a"], ["x"], **kwargs)


def test_plots_read_a_downsampled_history(tmp_path):
    pytest.importorskip("matplotlib")
    from gradwatch.report.watch_plots import GradientHistograms, LayerStatOverTime

    h = History(["a", "b"], STATS, max_rows=300, recent_rows=50, head_rows=5, hist_edges=[-38.0, -37.75, -37.5])
    _feed(h, 2_000, spike_at=700)
    h.append_histogram(0, np.array([[3, 1, 2, 0, 0, 0], [0, 4, 0, 0, 0, 0]]))  # 2 bins + zero/underflow/...
    p = LayerStatOverTime(h).plot()
    assert len(p.ax.collections) == 2 and max(p.ax.get_ylim()) >= 1e6  # the spike's band is drawn
    g = GradientHistograms(h).plot()
    assert "zero 33%" in g.ax.lines[0].get_label()
    assert g.save(tmp_path / "h.png").stat().st_size > 0
