"""Theory plots read saved numbers, draw on a given ax and return themselves."""

import math

import numpy as np

from gradwatch.report.theory_plots import PhaseDiagramPlot, PredictedVsMeasured
from gradwatch.theory import phase_diagram


def test_phase_diagram_plot_draws_the_critical_line_on_a_given_ax():
    import matplotlib.pyplot as plt

    d = phase_diagram("relu", np.array([1.0, 1.5, 2.5, 3.0]), np.array([0.0, 0.5])).to_dict()
    _, ax = plt.subplots()
    p = PhaseDiagramPlot(d, depth=5, point=(1.5, 0.1)).plot(ax)
    assert p.ax is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert "critical line χ₁ = 1" in labels
    xs = [line for line in ax.get_lines() if line.get_label() == "critical line χ₁ = 1"][0].get_xdata()
    np.testing.assert_allclose(xs, 2.0, rtol=1e-9)
    plt.close(ax.figure)


def test_predicted_vs_measured_switches_to_log_scale(tmp_path):
    p = PredictedVsMeasured(["a", "b", "c"], [1e-4, 1e-2, 1.0], [1.1e-4, 0.9e-2, 1.0]).plot()
    assert p.ax.get_yscale() == "log" and not math.isnan(p.ax.get_ylim()[0])
    assert p.save(tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
