"""Input preprocessing of seed 001 (after LeCun et al.'s "Efficient BackProp"), fitted on the training split only.

- ``center``: x − E[x];
- ``standardize``: (x − E[x]) / std(x) per feature (constant features left at 0);
- ``pca``: decorrelate and scale to unit variance — project on the principal axes, divide by √λ
  (components with λ ≈ 0 are dropped, so the output has identity covariance);
- ``zca``: whiten and rotate back, Cov[x]^(−1/2)(x − E[x]) (Bell & Sejnowski 1997), identity covariance on the
  span of the training data.

Statistics are computed in float64 with the 1/n covariance of the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gradwatch.errors import check_choice

PREPROCESSORS = ("none", "center", "standardize", "pca", "zca")
EIGEN_RTOL = 1e-10  # eigenvalues below this fraction of the largest count as zero (dropped / not inverted)


@dataclass
class Preprocessor:
    """``fit`` on training inputs [n, d], then ``transform`` any split with the same statistics."""

    kind: str = "none"
    mean: Tensor | None = None
    matrix: Tensor | None = None  # [d, d'] applied as (x − mean) @ matrix

    def __post_init__(self) -> None:
        check_choice("preprocess", self.kind, PREPROCESSORS)

    def fit(self, x: Tensor) -> Preprocessor:
        if self.kind == "none":
            return self
        x = x.double()
        self.mean = x.mean(0)
        xc = x - self.mean
        if self.kind == "center":
            self.matrix = None
        elif self.kind == "standardize":
            std = xc.std(0, correction=0)
            self.matrix = torch.diag(torch.where(std > 0, 1.0 / std, torch.zeros_like(std)))
        else:
            cov = xc.T @ xc / len(x)
            lam, vecs = torch.linalg.eigh(cov)
            keep = lam > EIGEN_RTOL * lam.max().clamp_min(1e-300)
            lam, vecs = lam[keep], vecs[:, keep]
            pca = vecs / lam.sqrt()  # [d, k]: project, scale to unit variance
            self.matrix = pca if self.kind == "pca" else pca @ vecs.T
        return self

    def transform(self, x: Tensor) -> Tensor:
        if self.kind == "none":
            return x
        if self.mean is None:
            raise RuntimeError(f"Preprocessor({self.kind!r}).transform called before fit")
        out = x.double() - self.mean
        if self.matrix is not None:
            out = out @ self.matrix
        return out.to(x.dtype)

    @property
    def out_features(self) -> int | None:
        """Features after the transform (PCA may drop null directions); None when unchanged."""
        return None if self.matrix is None else self.matrix.shape[1]
