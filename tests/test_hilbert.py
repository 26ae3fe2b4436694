"""Hilbert keys: bijective on the grid, consecutive keys are neighbouring cells, twin agrees."""

import numpy as np
import pytest

from tokensim_hpc._kernels import hilbert as cy
from tokensim_hpc.numpy_kernels import hilbert as tw


def _grid(bits):
    n = 1 << bits
    cx, cy_ = np.meshgrid(np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64))
    return cx.ravel(), cy_.ravel()


@pytest.mark.parametrize("bits", [1, 2, 5, 8])
def test_bijective_and_local(bits):
    cx, cy_ = _grid(bits)
    keys = np.empty(cx.size, dtype=np.uint64)
    cy.hilbert_cells(cx, cy_, bits, keys)
    assert np.array_equal(np.sort(keys), np.arange(cx.size, dtype=np.uint64))
    order = np.argsort(keys)
    step = np.abs(np.diff(cx[order])) + np.abs(np.diff(cy_[order]))
    assert np.all(step == 1), "consecutive Hilbert keys must be edge-adjacent cells"


def test_32_bit_keys_are_locally_bijective():
    # A 2**32 grid is too big to enumerate: check a block of cells in a corner
    # and a block in the middle map to distinct keys, and neighbours stay close.
    for base in (0, 2**31 - 8):
        cx, cy_ = _grid(4)
        keys = np.empty(cx.size, dtype=np.uint64)
        cy.hilbert_cells(cx + base, cy_ + base, 32, keys)
        assert np.unique(keys).size == cx.size


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_twin_equal(n):
    rs = np.random.default_rng(n)
    x, y = rs.random(n), rs.random(n)
    for bits in (16, 21, 32):
        a = np.empty(n, dtype=np.uint64)
        b = np.empty(n, dtype=np.uint64)
        cy.hilbert_keys(x, y, 0.0, 0.0, 1.0, 1.0, bits, a)
        tw.hilbert_keys(x, y, 0.0, 0.0, 1.0, 1.0, bits, b)
        assert np.array_equal(a, b)


def test_box_edges_and_degenerate_box():
    x = np.array([0.0, 1.0, 0.5, -1.0, 2.0])
    y = np.array([0.0, 1.0, 0.5, 0.5, 0.5])
    a = np.empty(5, dtype=np.uint64)
    b = np.empty(5, dtype=np.uint64)
    cy.hilbert_keys(x, y, 0.0, 0.0, 1.0, 1.0, 16, a)
    tw.hilbert_keys(x, y, 0.0, 0.0, 1.0, 1.0, 16, b)
    assert np.array_equal(a, b)
    assert a.max() < 2**32
    # All points on a vertical line: keys still defined and ordered along y.
    cy.hilbert_keys(np.zeros(5), np.linspace(0, 1, 5), 0.0, 0.0, 0.0, 1.0, 16, a)
    assert np.unique(a).size == 5


def test_locality_of_random_points():
    """Points close in key are close in space: mean step along the curve is small."""
    rs = np.random.default_rng(3)
    xy = rs.random((20000, 2))
    keys = np.empty(20000, dtype=np.uint64)
    cy.hilbert_keys(xy[:, 0], xy[:, 1], 0, 0, 1, 1, 32, keys)
    order = np.argsort(keys)
    step = np.linalg.norm(np.diff(xy[order], axis=0), axis=1).mean()
    random_step = np.linalg.norm(np.diff(xy, axis=0), axis=1).mean()
    assert step < random_step / 20


def test_bits_validated():
    out = np.empty(1, dtype=np.uint64)
    with pytest.raises(ValueError):
        cy.hilbert_keys(np.zeros(1), np.zeros(1), 0, 0, 1, 1, 33, out)
    with pytest.raises(ValueError):
        tw.hilbert_keys(np.zeros(1), np.zeros(1), 0, 0, 1, 1, 0, out)
