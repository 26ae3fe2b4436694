"""Checks of the risk measures' inputs, refused alike on every rank.

Each check finds offenders locally, then agrees on the first one (smallest
agent id) over the ranks, so every rank raises the same
:class:`~tokensim_hpc.errors.RiskInputError` and none is left in a collective.
"""

from __future__ import annotations

import numpy as np

from ..errors import RiskInputError
from ..parallel.mpi import min_over_ranks
from ..parallel.reduce import allreduce_sum_int


def _refuse_first(domain, bad_gid: np.ndarray, bad_value: np.ndarray, message: str) -> None:
    """Raise ``message`` (with {gid} and {value}) for the smallest offending id. Collective."""
    item = None
    if bad_gid.size:
        k = int(np.argmin(bad_gid))
        item = (int(bad_gid[k]), float(bad_value[k]))
    first = min_over_ranks(domain.comm, item)
    if first is not None:
        raise RiskInputError(message.format(gid=first[0], value=first[1]))


def _agree(domain, shape_wrong: bool, n_bad: int) -> tuple[bool, bool]:
    """(a rank has the wrong shape, a rank has an offending value), from one reduction.
    Collective."""
    wrong, bad = allreduce_sum_int(domain.comm, np.array([bool(shape_wrong), n_bad]))
    return bool(wrong), bool(bad)


def agent_column(domain, values, name: str, positive: bool = False) -> np.ndarray:
    """One finite value per owned agent, >= 0 (or > 0), as float64. Collective."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    shape_wrong = values.shape != (domain.n_owned,)
    bad = np.zeros(0, dtype=bool) if shape_wrong else \
        ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
    wrong, any_bad = _agree(domain, shape_wrong, int(np.count_nonzero(bad)))
    if wrong:
        raise RiskInputError(f"{name}: one value per owned agent is needed on every rank")
    if any_bad:
        rule = "> 0" if positive else ">= 0"
        _refuse_first(domain, domain.gid[bad], values[bad],
                      f"{name} must be finite and {rule}: agent {{gid}} has {{value!r}}")
    return values


def edge_column(domain, values, name: str) -> np.ndarray:
    """One finite value >= 0 per local edge (CSR order), as float64. Collective."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    shape_wrong = values.shape != (int(domain.indptr[-1]),)
    bad = np.zeros(0, dtype=np.int64) if shape_wrong else \
        np.flatnonzero(~np.isfinite(values) | (values < 0))
    wrong, any_bad = _agree(domain, shape_wrong, int(bad.shape[0]))
    if wrong:
        raise RiskInputError(f"{name}: one value per local edge (CSR order) is needed on "
                             "every rank")
    if any_bad:
        source = np.searchsorted(domain.indptr, bad, side="right") - 1
        _refuse_first(domain, domain.gid[source], values[bad],
                      f"{name} must be finite and >= 0: an edge of agent {{gid}} has "
                      "{value!r}")
    return values


def shocked_slots(domain, shocked) -> tuple[np.ndarray, np.ndarray]:
    """Owned slots of the shocked agents and their places in ``shocked``. Collective.

    ``shocked`` holds global agent ids, the same on every rank. An id that no rank
    owns, or one given twice, is refused with an error that names it.
    """
    shocked = np.atleast_1d(np.asarray(shocked))
    if shocked.ndim != 1 or (shocked.size and shocked.dtype.kind not in "iu"):
        raise RiskInputError(f"shocked agents must be a list of integer ids, got {shocked!r}")
    shocked = shocked.astype(np.int64)
    unique, counts = np.unique(shocked, return_counts=True)
    if np.any(counts > 1):
        raise RiskInputError(f"agent id {int(unique[counts > 1][0])} is shocked twice")
    local = domain.find_owned(shocked)
    mine = local >= 0
    owners = allreduce_sum_int(domain.comm, mine.astype(np.int64))
    missing = shocked[owners == 0]
    if missing.size:
        raise RiskInputError(f"shock refused: no agent has id {int(missing[0])} (the network "
                             f"has {domain.n_total} agents, ids 0..{domain.n_total - 1})")
    return local[mine], np.flatnonzero(mine)


def row_sums(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of each CSR row's values, in the row's edge order (so the same on any
    rank count: a row is the same edges in the same order everywhere). Local.

    Each row is one segment of ``numpy.add.reduceat`` holding exactly the row's
    values: numpy adds a segment pairwise, in groups set by the positions in
    the segment, so a value appended to the last row (a padding zero) could
    change the last bit of its sum, and the last row of a rank is not the last
    on another rank count.
    """
    n = indptr.shape[0] - 1
    out = np.zeros(n)
    rows = np.flatnonzero(indptr[:-1] < indptr[1:])
    if rows.size:
        out[rows] = np.add.reduceat(values[:int(indptr[-1])], indptr[:-1][rows])
    return out
