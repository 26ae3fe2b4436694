"""Risk measures on one rank: textbook networks worked by hand, the references on a
random network, the PETSc matrix against the engine's sums, the exact transposed
product against scipy, PETSc options and object lifetimes, input errors, the
exact solver without petsc4py, and the benchmark script end to end.

The same checks (``risk_cases``) run on 2, 3 and 4 ranks in ``test_risk_mpi.py``.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import risk_cases as cases
from mpirun import REPO, mpi_env, mpirun

from tokensim_hpc.errors import RiskInputError
from tokensim_hpc.linalg import initialize, live_objects, split_command_line
from tokensim_hpc.linalg.petsc import parse_options
from tokensim_hpc.parallel.mpi import world

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("check", cases.CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_on_one_rank(check):
    assert check(world()) == []
    assert live_objects() == []


def test_references_agree_with_each_other():
    """The fictitious default algorithm of the reference equals plain iteration."""
    import scipy.sparse as sp

    rs = np.random.default_rng(1)
    n = 300
    coo = sp.random(n, n, density=0.03, random_state=2, format="coo")
    keep = coo.row != coo.col  # no self-obligations
    L = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    e = rs.random(n) * 0.3
    ref = cases.reference_clearing(L, e)
    pbar = np.asarray(L.sum(axis=1)).ravel()
    PiT = (sp.diags(np.divide(1.0, pbar, out=np.zeros(n), where=pbar > 0)) @ L).T.tocsr()
    p = pbar.copy()
    for _ in range(5000):
        p = np.minimum(pbar, PiT @ p + e)
    assert ref["rounds"] >= 2 and ref["defaulted"].any()
    assert np.allclose(ref["payments"], p, rtol=0, atol=1e-12)


def test_petsc_options_parsed_with_the_prefix():
    assert split_command_line(["--n", "5", "--", "-tokensim_ksp_type", "gmres"]) == \
        (["--n", "5"], ["-tokensim_ksp_type", "gmres"])
    assert split_command_line(["--n", "5"]) == (["--n", "5"], [])
    assert parse_options(["-tokensim_ksp_rtol", "1e-10", "-log_view", "-tokensim_x", "-1"]) == \
        [("tokensim_ksp_rtol", "1e-10"), ("log_view", None), ("tokensim_x", "-1")]
    with pytest.raises(ValueError, match="-tokensim_ksp_type"):
        parse_options(["-ksp_type", "gmres"])
    with pytest.raises(ValueError, match="follows no option"):
        parse_options(["gmres"])


def test_petsc_options_reach_the_solver():
    """Options given after PETSc started go to the database and set up the next KSP."""
    PETSc = initialize(world(), ["-tokensim_pc_type", "none", "-tokensim_ksp_gmres_restart",
                                 "50"])
    try:
        from tokensim_hpc.risk import Clearing

        d, sheets, ref, _ = cases.random_case(world())
        with Clearing(d, sheets.liability) as clearing:
            result = clearing.solve(sheets.external)
            assert clearing.solver_type == "gmres/none"
        assert result.n_defaulted > 0 and result.residual < 1e-8
        d.halo.destroy()
        ref.halo.destroy()
    finally:
        PETSc.Options().delValue("tokensim_pc_type")
        PETSc.Options().delValue("tokensim_ksp_gmres_restart")
    assert live_objects() == []


def test_inputs_refused_with_the_agent_named():
    d, edges = cases.domain_from_edges(world(), 4, [0, 1, 2], [1, 2, 3])
    from tokensim_hpc.risk import clearing_vector, debtrank

    with pytest.raises(RiskInputError, match="agent 1 has -2.0"):
        debtrank(d, np.array([1.0, -2.0, 1.0])[edges], np.ones(4), np.ones(4), [0])
    with pytest.raises(RiskInputError, match="equity must be finite and > 0: agent 2"):
        debtrank(d, np.ones(3), np.array([1.0, 1.0, 0.0, 1.0]), np.ones(4), [0])
    with pytest.raises(RiskInputError, match="psi"):
        debtrank(d, np.ones(3), np.ones(4), np.ones(4), [0], psi=1.5)
    with pytest.raises(RiskInputError, match="agent id 2 is shocked twice"):
        debtrank(d, np.ones(3), np.ones(4), np.ones(4), [2, 2])
    with pytest.raises(RiskInputError, match="external assets must be finite and >= 0: agent 3"):
        clearing_vector(d, np.ones(3), np.array([0.0, 0.0, 0.0, np.nan]))
    with pytest.raises(RiskInputError, match="method"):
        clearing_vector(d, np.ones(3), np.ones(4), method="newton")
    with pytest.raises(RiskInputError, match=r"solver must be one of \('petsc', 'exact'\), "
                                             r"got 'PETSc'"):
        debtrank(d, np.ones(3), np.ones(4), np.ones(4), [0], solver="PETSc")
    with pytest.raises(RiskInputError, match="solver must be one of .* got None"):
        clearing_vector(d, np.ones(3), np.ones(4), solver=None)
    with pytest.raises(RiskInputError, match=r"method 'fda' is not possible with "
                                             r"solver='exact', which allows \('fixed_point',\)"):
        clearing_vector(d, np.ones(3), np.ones(4), method="fda", solver="exact")
    d.halo.destroy()
    assert live_objects() == []


def test_row_sums_do_not_depend_on_the_row_being_last():
    """numpy adds a reduceat segment pairwise, grouped by position: one more value
    (a padding zero) after the last row regrouped its sum, so the last row of a
    rank could differ in its last bit from the same row elsewhere. Rows of 8 and
    16 values whose sums did differ that way."""
    from tokensim_hpc.risk._inputs import row_sums

    rs = np.random.default_rng(3)
    for m in (8, 16):
        v = rs.random(m) * 10.0 ** rs.uniform(-3, 3, m)
        last = row_sums(np.array([0, m]), v)
        not_last = row_sums(np.array([0, m, m, m + 1]), np.append(v, 5.0))
        assert last[0].hex() == not_last[0].hex(), m
        assert np.array_equal(not_last[1:], [0.0, 5.0])
    assert row_sums(np.array([0, 0, 0]), np.zeros(0)).tolist() == [0.0, 0.0]


NO_PETSC = """
import sys
sys.modules["petsc4py"] = None  # any import of petsc4py now fails
sys.path.insert(0, "tests")
import numpy as np
import risk_cases as cases
from tokensim_hpc.parallel.mpi import world
from tokensim_hpc.risk import (clearing_vector, contagion_probabilities, debtrank,
                               in_strength)

comm = world()
d, edges = cases.domain_from_edges(comm, 4, [0, 1, 2, 3], [1, 2, 3, 0])
ones = np.ones(d.n_owned)
r = debtrank(d, np.ones(4)[edges], 2 * ones, ones, [0], solver="exact")
c = clearing_vector(d, np.array([2.0, 1.0, 1.0, 1.0])[edges], 0 * ones, tol=0.0,
                    solver="exact")
s = in_strength(d, np.arange(1.0, 5.0)[edges])
p = contagion_probabilities(d, np.ones(4)[edges], ones, ones, [0])
try:
    debtrank(d, np.ones(4)[edges], 2 * ones, ones, [0])
    petsc = "petsc-ran"
except ImportError:
    petsc = "petsc-refused"
both = comm.allgather((d.gid.tolist(), s.tolist()))
if comm.rank == 0:
    strength = dict(kv for g, v in both for kv in zip(g, v))
    print(r.debtrank, r.steps, c.shortfall, [strength[i] for i in range(4)],
          round(p.expected_defaults, 6), petsc)
"""


def test_exact_solver_needs_no_petsc():
    """On 2 ranks, with petsc4py impossible to import and no PETSC_DIR: import the
    risk package, run DebtRank and clearing with solver="exact", in-strength and
    contagion; the PETSc solver, as a control, fails there for want of petsc4py.

    4-cycle 0->1->2->3->0 owing 1 each, equity 2: the shock of 0 halves down the
    cycle, h = (1, 1/2, 1/4, 1/8), R = (1/2 + 1/4 + 1/8) / 4 = 7/32 in 4 steps.
    Clearing with 0 owing 2 and no outside assets: 0 receives only 1, so the
    greatest clearing vector is (1, 1, 1, 1), the shortfall 1. Weights 1..4 along
    the cycle: in-strengths (4, 1, 2, 3). Contagion of 0 with buffers and sigmas 1:
    agent 1 is exposed to 1, so P = 1/2 there and 1 - Phi(1) elsewhere."""
    env = mpi_env()
    env.pop("PETSC_DIR", None)
    proc = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-n", "2",
                           sys.executable, "-c", NO_PETSC], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = round(0.5 + 3 * 0.5 * math.erfc(1 / math.sqrt(2)), 6)
    assert proc.stdout.strip() == (f"0.21875 4 1.0 [4.0, 1.0, 2.0, 3.0] {expected} "
                                   "petsc-refused"), proc.stdout + proc.stderr


def test_balance_sheets_are_keyed_by_agent_id():
    from tokensim_hpc.risk import balance_sheets

    d, edges = cases.domain_from_edges(world(), 5, [0, 0, 1, 3, 4], [1, 2, 2, 4, 0])
    a, b = balance_sheets(d, 3), balance_sheets(d, 3, backend="numpy")
    assert np.array_equal(a.liability, b.liability) and np.array_equal(a.equity, b.equity)
    assert np.all((a.liability >= 0.5) & (a.liability < 1.5))
    assert np.array_equal(a.value, [a.liability[0] + a.liability[1], a.liability[2], 0.0,
                                    a.liability[3], a.liability[4]])
    d.halo.destroy()


def test_benchmark_script_runs_with_petsc_options():
    proc = mpirun(2, ["benchmarks/risk.py", "--n", "3000", "--k", "6", "--",
                      "-tokensim_ksp_type", "gmres", "-tokensim_pc_type", "bjacobi"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["n"] == 3000 and line["ranks"] == 2 and line["edges"] == 18000
    assert line["clearing_solver"] == "gmres/bjacobi" and line["live_petsc_objects"] == 0
    assert line["debtrank_iterations"] > 1 and line["n_defaulted_clearing"] > 0
    assert line["clearing_residual"] < 1e-8
    assert line["pagerank_solver"] == "gmres/bjacobi" and line["pagerank_iterations"] > 1
    assert line["pagerank_residual"] < 1e-11 / 3000 and 0 <= line["pagerank_top"][0] < 3000


def test_only_the_linear_algebra_module_imports_petsc4py():
    importers = sorted(str(p.relative_to(REPO)) for p in (REPO / "tokensim_hpc").rglob("*.py")
                       if "import petsc4py" in p.read_text() or "from petsc4py" in p.read_text())
    assert importers == ["tokensim_hpc/linalg/petsc.py"]
    risk = [p.name for p in (REPO / "tokensim_hpc" / "risk").glob("*.py")
            if "mpi4py" in p.read_text()]
    assert risk == []
