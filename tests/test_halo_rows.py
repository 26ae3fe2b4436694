"""Interior rows (no ghost column) of a CSR, including empty rows anywhere."""

import numpy as np

from tokensim_hpc.parallel.halo import rows_without_ghosts


def _reference(edge_local, indptr, n_owned):
    return [r for r in range(len(indptr) - 1)
            if all(c < n_owned for c in edge_local[indptr[r]:indptr[r + 1]])]


def test_rows_without_ghosts_random_and_edge_cases():
    rs = np.random.default_rng(0)
    for trial in range(50):
        n_rows = int(rs.integers(0, 30))
        degree = rs.integers(0, 4, n_rows)
        if n_rows and trial % 3 == 0:
            degree[-1] = 0  # empty trailing rows
        indptr = np.concatenate(([0], np.cumsum(degree))).astype(np.int64)
        edge_local = rs.integers(0, 15, indptr[-1]).astype(np.int32)
        got = rows_without_ghosts(edge_local, indptr, 10)
        assert got.tolist() == _reference(edge_local, indptr, 10)
    assert rows_without_ghosts(np.zeros(0, np.int32), np.zeros(1, np.int64), 0).size == 0
