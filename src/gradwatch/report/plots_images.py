"""Rows of images with a chosen colour scale (the catalogue's image experiments).

:class:`~gradwatch.report.plots.ImageRow` scales every image to its own range; :class:`ImageGrid` draws
several rows of the same images, each row on a fixed scale ``(vmin, vmax)`` or on each image's own range, so
that "a flat grey field" and "noise" can be seen side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gradwatch.report.plots import _pyplot, _Saveable

Image = Sequence[Sequence[float]]


class ImageGrid(_Saveable):
    """``rows = {row label: ({caption: image}, (vmin, vmax) or None)}``; every row has the same captions."""

    def __init__(
        self,
        rows: Mapping[str, tuple[Mapping[str, Image], tuple[float, float] | None]],
        *,
        title: str,
        cmap: str = "gray",
    ):
        self.rows, self.title, self.cmap = rows, title, cmap

    def plot(self, ax=None) -> ImageGrid:
        plt = _pyplot()
        ncols = max(len(images) for images, _ in self.rows.values())
        fig, axes = plt.subplots(
            len(self.rows), ncols, figsize=(2.6 * ncols, 2.8 * len(self.rows)), layout="constrained", squeeze=False
        )
        for r, (row_label, (images, scale)) in enumerate(self.rows.items()):
            vmin, vmax = scale if scale is not None else (None, None)
            for c, (caption, img) in enumerate(images.items()):
                a = axes[r][c]
                im = a.imshow(img, cmap=self.cmap, vmin=vmin, vmax=vmax)
                a.set_title(caption, fontsize=9)
                a.set_xticks([])
                a.set_yticks([])
                fig.colorbar(im, ax=a, shrink=0.75, label="activation" if c else "pixel value")
            axes[r][0].set_ylabel(row_label, fontsize=9)
            for a in axes[r][len(images) :]:
                a.axis("off")
        fig.suptitle(self.title)
        self.ax, self.figure = axes[0][0], fig
        return self
