"""Trade credit settled by hand on several ranks (see credit_cases)."""

import pytest
from credit_cases import settle_by_hand

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]


def test_settlement_pays_each_creditor_its_share_on_several_ranks():
    from mpi4py import MPI

    assert settle_by_hand(MPI.COMM_WORLD) == []
