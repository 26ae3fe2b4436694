"""Exact sums of floating-point values, bit-identical on any number of ranks.

Each rank adds its values into integer fixed-point accumulators (the exact
sum, see ``cython_kernels/exactsum.pyx``); integer addition is associative, so
an ``MPI_SUM`` over ranks gives the same accumulator whatever the partition;
the result is the correctly rounded double of the exact sum. This is what
lets a sum over agents come out the same on 1, 2, 3 or 4 ranks.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from .._kernels.exactsum import NACC, accumulate, normalize, to_doubles


def new_accumulators(n_quantities: int) -> np.ndarray:
    """Zeroed accumulators, one row per quantity. Local."""
    return np.zeros((n_quantities, NACC), dtype=np.int64)


def allreduce_exact(comm, acc: np.ndarray) -> np.ndarray:
    """Reduce accumulators over ``comm`` and return the sums as float64. Collective.

    ``acc`` (shape (n_quantities, NACC)) is normalised and summed in place.
    """
    normalize(acc)
    comm.Allreduce(MPI.IN_PLACE, acc, op=MPI.SUM)
    normalize(acc)
    return to_doubles(acc)


def allreduce_exact_sums(comm, *arrays: np.ndarray) -> np.ndarray:
    """Exact sum over ``comm`` of every element of each array, one float64 per array.

    The correctly rounded exact sum, so bit-identical on any number of ranks. Collective.
    """
    acc = new_accumulators(len(arrays))
    for q, values in enumerate(arrays):
        accumulate(np.ascontiguousarray(values, dtype=np.float64).reshape(-1), acc[q])
    return allreduce_exact(comm, acc)


def allreduce_sum_int(comm, values: np.ndarray) -> np.ndarray:
    """Element-wise sum over ``comm`` of an integer array (a new int64 array). Collective."""
    out = np.ascontiguousarray(values, dtype=np.int64).copy()
    comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
    return out
