"""The sub-domain's agents (``subsets.ascending_union``) against the numpy twin and by
hand."""

import numpy as np
import pytest

from tokensim_hpc._kernels import subsets as cy
from tokensim_hpc.numpy_kernels import subsets as tw


@pytest.mark.parametrize("n, sizes", [(0, (0, 0, 0)), (1, (1, 0, 1)), (64, (3, 5, 0)),
                                      (65, (40, 40, 40)), (1000, (0, 0, 7)),
                                      (100_003, (5000, 7000, 900))])
def test_ascending_union_twin_equal(n, sizes):
    rs = np.random.default_rng(n + sum(sizes))
    a, b, c = (np.sort(rs.integers(0, max(n, 1), s)) if i == 0 else
               rs.integers(0, max(n, 1), s) for i, s in enumerate(sizes))
    a, b, c = (x.astype(np.int64) for x in (a, b, c))
    if n > 64 and b.size >= 2:
        b[:2] = [n - 1, 63]  # the last slot and the end of a word
    out = []
    for mod in (cy, tw):
        places = np.full(n + 3, -7, dtype=np.int32)
        got = mod.ascending_union(n, a, b, c, places)
        out.append((got, places))
    (got, places), (want, places_tw) = out
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(places, places_tw)
    # By hand: the distinct values, ascending; each one's place; nothing else written.
    np.testing.assert_array_equal(got, np.unique(np.concatenate((a, b, c))))
    np.testing.assert_array_equal(places[got], np.arange(got.shape[0]))
    untouched = np.ones(n + 3, dtype=bool)
    untouched[got] = False
    assert np.all(places[untouched] == -7)


@pytest.mark.parametrize("mod", [cy, tw])
@pytest.mark.parametrize("bad", [-1, 10])
def test_ascending_union_refuses_out_of_range(mod, bad):
    ok = np.array([1, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="outside"):
        mod.ascending_union(10, ok, np.array([3, bad], dtype=np.int64), ok,
                            np.zeros(10, dtype=np.int32))
    with pytest.raises(ValueError, match="fewer than n"):
        mod.ascending_union(10, ok, ok, ok, np.zeros(9, dtype=np.int32))
