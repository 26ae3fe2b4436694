"""Systemic risk on the agent network (paper section 6.1), over PETSc matrices with
the engine's row ownership, or over products bit-identical on any rank count.

``debtrank``: DebtRank of a shocked set (Battiston et al. 2012).
``clearing``: Eisenberg-Noe clearing payments (fictitious default algorithm or
fixed-point iteration).
``transpose``: W^T x over the edges, bit-identical on any rank count, without
PETSc (``solver="exact"`` of DebtRank and clearing; the in-strength).
``centrality``: in-strength, PageRank and Katz centrality of a weighted network,
and the most central agents over all ranks.
``contagion``: contagion probabilities P(Default_i | Stressed) (paper 6.1).
``synthetic``: random balance sheets keyed by agent id, for tests and benchmarks.
"""

from .centrality import (
    Centrality,
    CentralityResult,
    in_strength,
    katz,
    pagerank,
    top_agents,
)
from .clearing import Clearing, ClearingResult, clearing_vector
from .contagion import ContagionResult, contagion_probabilities
from .debtrank import DebtRank, DebtRankResult, debtrank
from .synthetic import BalanceSheets, balance_sheets
from .transpose import SOLVERS, ExactTranspose

__all__ = ["SOLVERS", "BalanceSheets", "Centrality", "CentralityResult", "Clearing",
           "ClearingResult", "ContagionResult", "DebtRank", "DebtRankResult", "ExactTranspose",
           "balance_sheets", "clearing_vector", "contagion_probabilities", "debtrank",
           "in_strength", "katz", "pagerank", "top_agents"]
