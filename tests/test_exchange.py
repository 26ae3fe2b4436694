"""The typed all-to-all helpers on one rank (their use at 2-4 ranks is covered by the
halo and engine tests under mpirun)."""

import numpy as np
import pytest
from mpi4py import MPI

from tokensim_hpc.parallel import exchange


@pytest.mark.parametrize("shape, dtype", [((0,), np.float64), ((7,), np.int64),
                                          ((5, 3), np.float64), ((4, 2), np.int32)])
def test_alltoallv_to_self_returns_the_rows(shape, dtype):
    send = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    got = exchange.alltoallv(MPI.COMM_SELF, send, np.array([shape[0]]))
    assert got.dtype == send.dtype and got.shape == send.shape
    np.testing.assert_array_equal(got, send)


def test_counts_offsets():
    np.testing.assert_array_equal(exchange._counts_offsets(np.array([3, 0, 4])),
                                  [[3, 0, 4], [0, 3, 3]])
    assert exchange._counts_offsets(np.array([3])).dtype == np.int32


@pytest.mark.parametrize("counts", [[2**31], [5, 2**31], [2**30, 2**30, 1]])
def test_counts_beyond_mpi_int_are_refused(counts):
    with pytest.raises(OverflowError, match="more ranks"):
        exchange._counts_offsets(np.array(counts, dtype=np.int64))


def test_counts_and_offsets_within_mpi_int_pass():
    # The last offset is 2**30 and every count below 2**31: MPI can address it all.
    np.testing.assert_array_equal(exchange._counts_offsets(np.array([2**30, 2**30])),
                                  [[2**30, 2**30], [0, 2**30]])
