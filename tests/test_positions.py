"""Each rank draws only its block of positions, exactly as the spec's single generator does."""

import numpy as np
import pytest

from tokensim_hpc.models.b1 import initial_positions


@pytest.mark.parametrize("seed", [0, 42, 2**40 + 7])
def test_blocks_equal_default_rng(seed):
    n = 1001
    whole = np.random.default_rng(seed).random((n, 2))
    for size in (1, 2, 3, 7):
        parts = [initial_positions(seed, r * n // size, (r + 1) * n // size) for r in range(size)]
        assert np.array_equal(np.concatenate(parts), whole)


def test_empty_block():
    assert initial_positions(1, 5, 5).shape == (0, 2)
