"""Systemic risk on the agent network (paper section 6.1), over PETSc matrices with
the engine's row ownership.

``debtrank``: DebtRank of a shocked set (Battiston et al. 2012).
``clearing``: Eisenberg-Noe clearing payments (fictitious default algorithm or
fixed-point iteration).
``synthetic``: random balance sheets keyed by agent id, for tests and benchmarks.
"""

from .clearing import Clearing, ClearingResult, clearing_vector
from .debtrank import DebtRank, DebtRankResult, debtrank
from .synthetic import BalanceSheets, balance_sheets

__all__ = ["BalanceSheets", "Clearing", "ClearingResult", "DebtRank", "DebtRankResult",
           "balance_sheets", "clearing_vector", "debtrank"]
