"""Systemic risk of the economy's network (paper 6.1), every ``risk.every`` ticks.

    R_sys(t) = 1 - sum_{i,j} w_ij (d_i - dbar)^2 / sum_i d_i^2

exactly as the paper writes it, with

- the sum over i, j running over the network's edges i -> j (connected pairs);
- d_i the agent's connectedness: its number of ties, in and out (an integer,
  so that the sums are exact); dbar its mean over all agents;
- w_ij the correlation of i's and j's portfolio returns over a rolling
  window: exponentially weighted with a half-life of ``risk.halflife``
  samples. A portfolio's return between two samples is r_i = W_i / W_i' - 1,
  W_i its holdings valued at the pool prices (0 when W_i' = 0). With
  lam = 2^(-1 / halflife), at every sample dev_i = r_i - m_i,
  var_i <- lam var_i + (1 - lam) dev_i^2, cov_ij <- lam cov_ij +
  (1 - lam) dev_i dev_j (per edge, Cython ``risk.edge_correlations``),
  m_i <- lam m_i + (1 - lam) r_i and w_ij = cov_ij (1/sd_i) (1/sd_j)
  (0 when either standard deviation is below 1e-150).

R_sys is 1 when every agent has the same connectedness and falls as
correlated neighbours differ in connectedness. The neighbours' deviations
and standard deviations come by one halo exchange; the per-row sums of w
run in edge order and the global sums (of w_i (d_i - dbar)^2 per agent, w_i
its row's sum of w, and of the integers d_i and d_i^2) are exact, so R_sys is
the same on any number of ranks. A new edge (network formation) starts with
cov = 0.
"""

from __future__ import annotations

import math

import numpy as np

from ..parallel.reduce import allreduce_exact, allreduce_sum_int, new_accumulators

_NO_ROWS = np.zeros(0)  # edge_correlations: the per-row sums w_i are not kept


class SystemicRisk:
    """R_sys of one rank's agents and edges. Construction is collective when ``every``
    is not 0 (it computes the connectedness).

    Parameters
    ----------
    domain : Domain
    every : int
        Ticks between samples (0: never).
    halflife : float
        Half-life of the correlations' exponential weights, in samples.
    kernels : namespace with ``risk``
    """

    def __init__(self, domain, every, halflife, kernels):
        self.d = domain
        self.every = int(every)
        self.lam = 2.0 ** (-1.0 / halflife)
        self.kr = kernels.risk
        n = domain.n_owned
        self.samples = 0
        # State written at once (not left to fault page by page in the first samples):
        # set up with the model, like the holdings.
        self.wealth_prev = np.full(n, 0.0)  # at the last sample: equal to Defi.agent_wealth()
        self.mean = np.full(n, 0.0)
        self.var = np.full(n, 0.0)
        self.cov = np.full(int(domain.indptr[-1]), 0.0)
        self.degree = None  # connectedness, recomputed when the network changes
        self._degree_sums = None  # (sum d, sum d^2) over all agents, with it
        self.n_edges = None  # over all ranks (each row keeps its edges)
        self.last = (math.nan, math.nan, math.nan)
        self._dev_isd = None
        if self.every:
            self._network_changed()  # the connectedness, with the model's set-up

    def _network_changed(self) -> None:
        """Connectedness d_i of the owned agents and the exact sums of d and d^2.
        Collective."""
        self.degree = self._connectedness()
        # Integers (below 2**53 summed): exact in int64, in any order.
        d_int = self.degree.astype(np.int64)
        self._degree_sums = [float(v) for v in allreduce_sum_int(
            self.d.comm, np.array([d_int.sum(), (d_int * d_int).sum()]))]

    def edges_replaced(self, replaced: np.ndarray) -> None:
        """New edges (a mask in CSR order) start uncorrelated; connectedness changed."""
        self.cov[replaced] = 0.0
        self.degree = None

    def _connectedness(self) -> np.ndarray:
        """Ties in and out of every owned agent (in-ties counted at the ghosts' owners).
        Collective."""
        d = self.d
        n, slots = d.n_owned, d.n_owned + d.halo.n_ghost
        ties = np.zeros(slots)
        self.kr.in_ties(d.indices, ties)
        d.halo.reduce_ghosts(ties, np.add)  # integers: exact in any order
        return ties[:n] + np.diff(d.indptr)

    def sample(self, holdings: np.ndarray, slot_value: np.ndarray) -> tuple[float, float, float]:
        """Take a sample of the owned agents' wealth (``holdings`` valued at
        ``slot_value``); return (R_sys, mean connectedness, mean correlation over the
        edges), NaN until two samples exist. Collective.

        Also sets ``wealth_prev``: every owned agent's wealth W_i."""
        d, lam = self.d, self.lam
        slots = d.n_owned + d.halo.n_ghost
        if self.degree is None:
            self._network_changed()
        if self.n_edges is None:
            self.n_edges = int(allreduce_sum_int(d.comm, np.array([self.cov.shape[0]]))[0])
        # Buffers kept between samples (fresh pages cost a fault each, per sample).
        if self._dev_isd is None or self._dev_isd.shape[0] != slots:
            self._dev_isd = np.zeros((slots, 2))
        dev_isd = self._dev_isd
        self.kr.agent_moments(holdings, slot_value, self.wealth_prev, self.mean, self.var, lam,
                              dev_isd)
        self.samples += 1
        if self.samples == 1:
            return self.last  # no return yet (r = 0 left the moments at 0)
        # One halo exchange of (dev, 1/sd) pairs, as complex numbers of the same 16 bytes.
        d.halo.exchange(dev_isd.view(np.complex128).reshape(-1))
        s_d, s_d2 = self._degree_sums
        dbar = s_d / d.n_total
        # Rows: sum_i w_i (d_i - dbar)^2 and sum_i w_i.
        acc = new_accumulators(2)
        self.kr.edge_correlations(d.indptr, d.indices, dev_isd, self.cov, lam, _NO_ROWS,
                                  self.degree, dbar, acc)
        spread, s_w = (float(v) for v in allreduce_exact(d.comm, acc))
        r_sys = 1.0 - spread / s_d2 if s_d2 > 0.0 else math.nan
        self.last = (r_sys, dbar, s_w / self.n_edges if self.n_edges else math.nan)
        return self.last
