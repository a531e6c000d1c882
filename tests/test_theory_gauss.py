"""The split Gauss–Legendre rules of gradwatch.theory.gauss against Gauss–Hermite and closed forms."""

import math

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import quad

from gradwatch.theory.gauss import expect, expect_pair


def _hermite(f, q, n=200):
    """∫Dz f(√q z) by probabilists' Gauss–Hermite quadrature (weight e^{−z²/2})."""
    z, w = hermegauss(n)
    return float(f(math.sqrt(q) * z) @ w / math.sqrt(2 * math.pi))


def _hermite_pair(f, g, q, c, n=120):
    z, w = hermegauss(n)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    return float(np.sum(np.outer(w, w) * f(u1) * g(u2)) / (2 * math.pi))


def _relu(x):
    return np.maximum(x, 0.0)


SMOOTH = [lambda h: np.tanh(h) ** 2, lambda h: (1 - np.tanh(h) ** 2) ** 2, lambda h: np.cos(h)]


@pytest.mark.parametrize("q", [0.01, 0.5])
def test_smooth_expectations_equal_gauss_hermite(q):
    # (only at small q: Gauss–Hermite converges slowly for tanh(√q z), whose poles z = iπ/(2√q) near the axis)
    for f in SMOOTH:
        assert expect(f, q) == pytest.approx(_hermite(f, q), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("q", [0.01, 0.5, 2.0, 9.0])
def test_smooth_expectations_equal_adaptive_quadrature(q):
    for f in SMOOTH:
        adaptive = quad(lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2), -12, 12, epsabs=1e-15,
                        epsrel=1e-13, limit=400)[0] / math.sqrt(2 * math.pi)
        assert expect(f, q) == pytest.approx(adaptive, rel=1e-11, abs=1e-14)


@pytest.mark.parametrize("c", [-0.7, 0.0, 0.4, 0.95])
def test_smooth_pair_expectations_equal_gauss_hermite(c):
    assert expect_pair(np.tanh, np.tanh, 0.5, c) == pytest.approx(_hermite_pair(np.tanh, np.tanh, 0.5, c),
                                                                 rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("q", [0.3, 1.0, 4.0])
def test_relu_moments_equal_closed_forms(q):
    assert expect(lambda h: _relu(h) ** 2, q) == pytest.approx(q / 2, rel=1e-12)
    assert expect(lambda h: (h > 0) * 1.0, q) == pytest.approx(0.5, rel=1e-12)
    assert expect(_relu, q) == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-12)


@pytest.mark.parametrize("c", [-0.9, -0.3, 0.0, 0.5, 0.99, 1.0])
def test_relu_pair_equals_the_arc_cosine_kernel(c):
    """Cho & Saul (2009): E relu(u₁)relu(u₂) = q/(2π)(√(1−c²) + (π − arccos c)c)."""
    q = 1.7
    kernel = q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
    assert expect_pair(_relu, _relu, q, c) == pytest.approx(kernel, rel=1e-10, abs=1e-14)
    step = (math.pi - math.acos(c)) / (2 * math.pi)  # E 1[u₁>0]1[u₂>0]
    assert expect_pair(lambda h: (h > 0) * 1.0, lambda h: (h > 0) * 1.0, q, c) == pytest.approx(step, rel=1e-10)


def test_array_of_lengths_gives_one_expectation_each():
    qs = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(expect(lambda h: h * h, qs), qs, rtol=1e-12)
