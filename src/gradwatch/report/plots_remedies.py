"""Plot objects of the remedy experiments (batch norm, residual nets, clipping, pretraining).

:class:`Panels` lays several plot objects of :mod:`gradwatch.report.plots` side by side in one figure (e.g. the
sigmoid-input percentiles without and with batch norm, on a shared y axis).
"""

from __future__ import annotations

from collections.abc import Sequence

from gradwatch.report.plots import _pyplot, _Saveable


class Panels(_Saveable):
    """Plot objects (anything with ``plot(ax=...)``) drawn side by side, with an overall title.

    ``sharey`` puts every panel on the same y scale, so that the panels can be compared by eye.
    """

    def __init__(
        self,
        panels: Sequence[_Saveable],
        *,
        title: str,
        sharey: bool = False,
        panel_size: tuple[float, float] = (5.2, 4.0),
    ):
        self.panels, self.title, self.sharey, self.panel_size = list(panels), title, sharey, panel_size

    def plot(self, ax=None) -> Panels:
        plt = _pyplot()
        w, h = self.panel_size
        fig, axes = plt.subplots(
            1,
            len(self.panels),
            figsize=(w * len(self.panels), h),
            sharey=self.sharey,
            layout="constrained",
            squeeze=False,
        )
        for panel, a in zip(self.panels, axes[0]):
            panel.plot(ax=a)
        fig.suptitle(self.title)
        self.ax, self.figure = axes[0][0], fig
        return self
