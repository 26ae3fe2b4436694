"""Contagion probabilities (paper 6.1) of a stressed set of agents.

    P(Default_i | Stressed_j) = 1 - Phi((theta_i - sum_k c_ik 1[k = j]) / sigma_i)

for one stressed agent j, and for a stressed set S (the sum over k in S):
P_i = 1 - Phi((theta_i - sum_{k in S} c_ik) / sigma_i), with

- c_ik agent i's exposure to k: what k owes i, L_ki, carried by the edge
  k -> i of the liability network (the convention of ``debtrank`` and
  ``clearing``: an edge i -> j carries what i owes j);
- theta_i i's loss-absorbing buffer (e.g. its capital) and sigma_i > 0 the
  uncertainty of that buffer;
- Phi the standard normal distribution function, so 1 - Phi(x) =
  erfc(x / sqrt 2) / 2.

The exposures to the stressed set are a transposed product of the
liabilities with the stressed set's indicator
(:class:`~tokensim_hpc.risk.transpose.ExactTranspose`: each agent's terms
added in an order that does not depend on the partition), so the
probabilities are bit-identical on any number of ranks. The expected number
of defaults, sum_i P_i (the stressed agents included, whose own P is
computed like any other's), is an exact global sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erfc

from ..parallel.reduce import allreduce_exact_sums
from ._inputs import agent_column, edge_column, shocked_slots
from .transpose import ExactTranspose


@dataclass
class ContagionResult:
    """Probabilities of the owned agents and their sum over all agents."""

    probability: np.ndarray  # P_i of the owned agents
    exposure: np.ndarray     # sum_{k in S} c_ik of the owned agents
    expected_defaults: float  # sum_i P_i over all agents (exact)


def contagion_probabilities(domain, liability, buffer, sigma, stressed,
                            transpose=None) -> ContagionResult:
    """P(default | the agents ``stressed`` are) for every owned agent. Collective.

    Parameters
    ----------
    domain : Domain
    liability : float64 array, one per local edge (CSR order)
        L_ij of edge i -> j: what i owes j, >= 0.
    buffer : float64 array (n_owned)
        theta_i, >= 0.
    sigma : float64 array (n_owned)
        sigma_i, > 0.
    stressed : sequence of int
        Global ids of the stressed agents, the same on every rank; an id no
        agent has is refused with an error naming it.
    transpose : ExactTranspose of ``liability``, optional
        Reused when the caller has one already (it must hold these liabilities).
    """
    liability = edge_column(domain, liability, "liability")
    buffer = agent_column(domain, buffer, "buffer")
    sigma = agent_column(domain, sigma, "sigma", positive=True)
    slots, _ = shocked_slots(domain, stressed)
    is_stressed = np.zeros(domain.n_owned, dtype=bool)
    is_stressed[slots] = True
    # sum_{k in S} L_kj: the stressed agents' rows, added in a fixed order (L_kj * 1 or
    # * 0 is exact), only over the edges that carry a liability.
    if transpose is None:
        transpose = ExactTranspose(domain, liability, "liability")
    exposure = transpose.mult_transpose(is_stressed.astype(np.float64))
    probability = 0.5 * erfc((buffer - exposure) / (sigma * np.sqrt(2.0)))
    expected = float(allreduce_exact_sums(domain.comm, probability)[0])
    return ContagionResult(probability, exposure, expected)
