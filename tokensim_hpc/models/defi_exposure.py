"""Risk measures of the economy's exposure network (paper 6.1), every ``risk.every`` ticks.

The exposure network is the payment users' trade credit (``defi_credit``): an
edge i -> j carries L_ij, what i owes j (0 on edges without an obligation).
At a sample, from the agents' holdings valued at the pool prices W_i:

- claims_j = sum_i L_ij (in-strength) and obligations_i = pbar_i = sum_j L_ij;
- equity E_i = W_i + claims_i - obligations_i, floored at ``EQUITY_FLOOR``
  (an agent with nothing left loses everything to any default);
- the stressed set S: ``risk.stressed`` (global ids), or when empty the
  ``risk.stressed_top`` agents with the largest obligations at the sample
  (ties to the smaller id; fewer when fewer agents owe anything).

Measures (each a time series, the value at the last sample):

- contagion probabilities P(Default_i | S stressed) = 1 - Phi((theta_i -
  sum_{k in S} c_ik) / sigma_i) with c_ik = L_ki (i's exposure to k), the
  buffer theta_i = max(E_i, 0) and its uncertainty sigma_i =
  ``risk.buffer_sd`` * (W_i + claims_i) + 1e-9: over the agents outside S
  exposed to it (c_iS > 0; the others' P does not depend on S), the
  expected number of defaults sum_i P_i and the largest P_i;
- DebtRank of S (Battiston et al. 2012) with W_ij = min(1, L_ij / E_j) and
  economic values v_i = W_i + claims_i: the loss fraction R, the initial
  shock excluded, and the number of agents distressed;
- Eisenberg-Noe clearing with external assets e_i = W_i: the shortfall
  sum_i (pbar_i - p_i) and the number of agents that cannot pay in full.

Each snapshot also records every agent's claims and obligations, and the 20
most systemic agents: the largest one-step DebtRank impacts I_i = sum_j W_ij
v_j / sum v (the share of the economy's value that i's default destroys
directly; ids -1 and NaN past the number of agents in the credit network).

The work scales with the credit network, not with the economy: the measures
run on :meth:`~tokensim_hpc.engine.Domain.subdomain` of the edges that
carry an obligation and the agents at their ends (an agent outside it has no
claim, no obligation and no exposure, so it cannot take part in a cascade).
DebtRank normalises v over that sub-domain; R is rescaled to the economy's
total value (every agent's wealth plus the claims: the economy's wealth and
two exact sums over the sub-domain combined, so R equals the whole
network's to about 1e-16 relative). With no
obligation anywhere, every measure is 0 but the distressed count, which is
the number of agents in ``risk.stressed``.

``risk.solver = "exact"`` (default) computes the transposed products of
DebtRank and of the clearing fixed point in a fixed order
(:class:`~tokensim_hpc.risk.transpose.ExactTranspose`), so that every figure
is bit-identical on any number of ranks. ``"petsc"`` keeps the exposures in
PETSc MPIAIJ matrices with the engine's row ownership, updated in place at
every sample (rebuilt when the edges changed), DebtRank by MatMultTranspose
and the clearing vector by the fictitious default algorithm with KSP solves
(``-tokensim_ksp_*`` options after ``--`` on the command line): those two
measures then agree between rank counts to the solver's tolerance only.
"""

from __future__ import annotations

import math

import numpy as np

from ..parallel.mpi import allreduce_min_max
from ..parallel.reduce import allreduce_exact_sums, allreduce_sum_int
from ..risk import Clearing, DebtRank, contagion_probabilities, top_agents
from ..risk._inputs import row_sums
from ..risk.transpose import ExactTranspose

EQUITY_FLOOR = 1e-9  # quote
SIGMA_FLOOR = 1e-9   # quote
SERIES = ("debtrank", "debtrank_distressed", "contagion_expected_defaults",
          "contagion_max_probability", "clearing_shortfall", "clearing_defaults")


class ExposureRisk:
    """The exposure network's measures on one rank. Construction is local.

    Parameters
    ----------
    domain : Domain
    section : RiskSection ([risk])
    """

    def __init__(self, domain, section):
        self.d = domain
        self.solver = section.solver
        self.stressed = tuple(section.stressed)
        self.stressed_top = int(section.stressed_top)
        self.buffer_sd = float(section.buffer_sd)
        self.last = dict.fromkeys(SERIES, math.nan)
        self._debtrank = None  # PETSc objects kept between samples ("petsc")
        self._clearing = None

    @staticmethod
    def balance_sheets(net, owed, wealth):
        """(claims, obligations, equity, assets, the obligations' transposed product) of
        the credit network's agents (``wealth`` theirs). Collective."""
        transpose = ExactTranspose(net, owed, "liability")
        claims = transpose.mult_transpose(np.ones(net.n_owned))
        obligations = row_sums(net.indptr, owed)
        equity = np.maximum(wealth + claims - obligations, EQUITY_FLOOR)
        return claims, obligations, equity, wealth + claims, transpose

    def _stressed_set(self, net, obligations) -> tuple[list, int]:
        """(the stressed ids in the credit network, how many stressed agents are
        outside it). Collective."""
        if not self.stressed:
            # The largest debtors (fewer when fewer agents owe anything).
            ids, scores = top_agents(net, obligations, self.stressed_top)
            return ids[scores > 0].tolist(), 0
        wanted = np.asarray(self.stressed, dtype=np.int64)
        present = allreduce_sum_int(self.d.comm, (net.find_owned(wanted) >= 0).astype(np.int64))
        return wanted[present > 0].tolist(), int(np.count_nonzero(present == 0))

    def sample(self, owing, wealth, liability, total_wealth=None) -> dict:
        """The measures at this sample (the same on every rank). Collective.

        ``owing``: the edges that carry an obligation (``TradeCredit.owing_edges``:
        CSR positions, what they carry, their rows); ``wealth`` of every owned agent;
        ``liability`` the same obligations on every edge (the PETSc solver's input);
        ``total_wealth`` the economy's wealth, the sum of ``wealth`` over all agents
        (exactly or to a few ulps, the same on any number of ranks), when the caller
        has it (summed exactly here otherwise). The model gives the slots' exact
        totals valued at the pool prices, which saves a pass over every agent."""
        d = self.d
        edges, owed = owing.edges, owing.owed
        if allreduce_sum_int(d.comm, np.array([edges.shape[0]]))[0] == 0:
            # Nobody owes anything: nothing to propagate, nobody exposed.
            self.last = {**dict.fromkeys(SERIES, 0.0),
                         "debtrank_distressed": float(len(self.stressed))}
            return self.last
        # The credit network: the owing edges and the agents at their ends.
        net, agents = d.subdomain(edges, owing.rows)
        try:
            w = wealth[agents]
            claims, obligations, equity, assets, transpose = self.balance_sheets(net, owed, w)
            stressed, outside = self._stressed_set(net, obligations)
            sigma = self.buffer_sd * assets + SIGMA_FLOOR
            cp = contagion_probabilities(net, owed, np.maximum(equity, 0.0), sigma, stressed,
                                         transpose=transpose)
            # Over the agents exposed to S (the others' P does not depend on S).
            local = net.find_owned(np.asarray(stressed, dtype=np.int64))
            exposed = cp.exposure > 0
            exposed[local[local >= 0]] = False
            p_exposed = np.where(exposed, cp.probability, 0.0)
            # Economic values: every agent's assets (those outside the credit network
            # are their wealth), for DebtRank's normalisation.
            if total_wealth is None:
                total_wealth = allreduce_exact_sums(d.comm, wealth)[0]
            v_net, w_net, expected = allreduce_exact_sums(d.comm, assets, w, p_exposed)
            w_all = total_wealth
            p_max = allreduce_min_max(d.comm, 0.0, float(p_exposed.max(initial=0.0)))[1]
            if self.solver == "exact":
                # One set-up of the credit network's transposed products for all three.
                with DebtRank(net, owed, equity, assets, solver="exact",
                              like=transpose) as debtrank:
                    dr = debtrank.run(stressed)
                with Clearing(net, owed, solver="exact", like=transpose) as clearing:
                    cl = clearing.solve(w, method="fixed_point")
                # DebtRank normalised its values over the credit network: rescaled to the
                # economy's (every agent's wealth, plus the claims, all in the network).
                scale = v_net / (w_all - w_net + v_net)
                debtrank_r = dr.debtrank * scale
                distressed = dr.n_distressed + outside
            else:
                full_assets = wealth.copy()
                full_assets[agents] = assets
                full_equity = np.maximum(wealth, EQUITY_FLOOR)
                full_equity[agents] = equity
                dr, cl = self._petsc_measures(liability, full_equity, full_assets, wealth,
                                              list(self.stressed) or stressed)
                debtrank_r, distressed = dr.debtrank, dr.n_distressed
        finally:
            net.halo.destroy()
        self.last = {"debtrank": debtrank_r, "debtrank_distressed": float(distressed),
                     "contagion_expected_defaults": float(expected),
                     "contagion_max_probability": p_max,
                     "clearing_shortfall": cl.shortfall,
                     "clearing_defaults": float(cl.n_defaulted)}
        return self.last

    def _petsc_measures(self, liability, equity, assets, wealth, stressed):
        """DebtRank and the clearing (fictitious default algorithm) over PETSc matrices of
        the whole network, kept between samples: values rewritten in place, rebuilt when
        the edges changed. Collective."""
        if self._debtrank is None:
            self._debtrank = DebtRank(self.d, liability, equity, assets, solver="petsc")
            self._clearing = Clearing(self.d, liability, solver="petsc")
        else:
            self._debtrank.update(liability, equity, assets)
            self._clearing.update(liability)
        return self._debtrank.run(stressed), self._clearing.solve(wealth, method="fda")

    def snapshot(self, owing, wealth, k: int) -> dict:
        """Claims and obligations of every owned agent and the k most systemic agents
        (ids -1 and impact NaN past the number of agents in the credit network).
        Collective."""
        d = self.d
        owed = owing.owed
        # The credit network: the owing edges and the agents at their ends.
        net, agents = d.subdomain(owing.edges, owing.rows)
        try:
            claims, obligations, equity, assets, _ = self.balance_sheets(net, owed,
                                                                        wealth[agents])
            v_net, w_all, w_net = allreduce_exact_sums(d.comm, assets, wealth,
                                                       wealth[agents])
            total = w_all - w_net + v_net  # every agent's assets
            # One-step impact: sum_j min(1, L_ij / E_j) v_j over i's creditors (a halo
            # exchange of E and v), summed in row order.
            n, slots = net.n_owned, net.n_owned + net.halo.n_ghost
            e_col, v_col = np.empty(slots), np.empty(slots)
            e_col[:n], v_col[:n] = equity, assets / total if total > 0 else 0.0
            net.halo.exchange(e_col, v_col)
            cols = net.indices
            impact = row_sums(net.indptr, np.minimum(1.0, owed / e_col[cols]) * v_col[cols])
            ids, scores = top_agents(net, impact, k)
        finally:
            net.halo.destroy()
        top_id, top_impact = np.full(k, -1, dtype=np.int64), np.full(k, np.nan)
        top_id[:ids.shape[0]], top_impact[:ids.shape[0]] = ids, scores
        full = np.zeros((2, d.n_owned))
        full[0, agents], full[1, agents] = claims, obligations
        return {"claims": full[0], "obligations": full[1], "systemic_id": top_id,
                "systemic_impact": top_impact}

    def close(self) -> None:
        """Destroy the PETSc matrices kept between samples. Collective."""
        for obj in (self._debtrank, self._clearing):
            if obj is not None:
                obj.close()
        self._debtrank = self._clearing = None
