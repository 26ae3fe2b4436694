"""Trade credit (the economy's exposure network) and the risk measures a run records
from it, checked against numpy/scipy references recomputed from the run's file."""

import math
import tomllib
from importlib import resources

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from mpirun import mpirun, simulate
from risk_cases import reference_clearing, reference_debtrank
from scipy.special import erfc
from test_defi import _check_conservation

from tokensim_hpc.io import open_run

# Much credit, a short term, and a default shock on a third of the agents at tick 5 (the
# payment users among them cannot settle their debts on their next settlement tick).
SETS = ("agents.n=3000", "run.ticks=48", "output.every=8", "risk.every=8",
        "model.pay_probability=0.3", "model.credit_share=0.8", "model.credit_term=12")
SHOCK = """
[[stress.shocks]]
name = "defaults"
kind = "default"
tick = 5
agents = [{ids}]
"""
TYPE_PAYMENT = 5


def _scenario(tmp_path, shocked=range(0, 3000, 3)):
    text = resources.files("tokensim_hpc.scenarios").joinpath("defi.toml").read_text()
    path = tmp_path / "credit.toml"
    path.write_text(text + SHOCK.format(ids=", ".join(map(str, shocked))))
    return path


def _read(path):
    with h5py.File(path, "r") as f:
        out = {name: f[name][...] for name in ("agents/gid", "agents/type", "network/source")}
        for group in ("timeseries", "snapshots"):
            out.update({f"{group}/{n}": f[f"{group}/{n}"][...] for n in f[group]})
        out["scenario"] = tomllib.loads(f.attrs["scenario"])
    return out


def _columns(d):
    """(agent id -> column of the snapshots, each edge's source column)."""
    gid = d["agents/gid"]
    pos = np.empty(gid.size, dtype=np.int64)
    pos[gid] = np.arange(gid.size)
    return pos, pos[d["network/source"]]


def _credit_matrix(d, s):
    """The obligations of snapshot s as an N x N matrix (columns of the snapshots), with
    each agent's claims and obligations."""
    pos, src = _columns(d)
    n = pos.size
    dst = pos[d["snapshots/edge_target"][s].astype(np.int64)]
    L = sp.csr_matrix((d["snapshots/edge_owed"][s], (src, dst)), shape=(n, n))
    return L, np.asarray(L.sum(axis=0)).ravel(), np.asarray(L.sum(axis=1)).ravel()


@pytest.fixture(scope="module")
def credit_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("credit")
    out = tmp / "credit.h5"
    simulate(3, out, *SETS, scenario=str(_scenario(tmp)))
    return out, _read(out)


def test_obligations_are_lent_repaid_and_written_off_consistently(credit_run):
    """Outstanding(t) = outstanding(t-1) + lent - repaid - written off, per slot; the
    default shock made debtors default, and their creditors' recorded losses add up to
    what was written off; tokens are conserved with repayments in flight."""
    path, d = credit_run
    owed, lent = d["timeseries/credit_outstanding"], d["timeseries/credit_lent"]
    repaid, lost = d["timeseries/credit_repaid"], d["timeseries/credit_written_off"]
    assert lent.sum() > 0 and repaid.sum() > 0
    np.testing.assert_allclose(owed[0], lent[0] - repaid[0] - lost[0], atol=1e-9)
    np.testing.assert_allclose(owed[1:], owed[:-1] + lent[1:] - repaid[1:] - lost[1:],
                               rtol=1e-12, atol=1e-9)
    defaults = d["timeseries/credit_defaults"]
    assert defaults[:4].sum() == 0 and defaults[4:].sum() >= 10
    assert lost.sum() > 0
    assert d["snapshots/credit_loss"][-1].sum() == pytest.approx(lost.sum(), rel=1e-12)
    _check_conservation(path)


def test_claims_obligations_and_settlement_ticks(credit_run):
    """Per snapshot: claims and obligations are the in- and out-sums of the edges'
    obligations; only payment users owe; a debtor whose settlement tick it is owes
    nothing after it; the totals equal credit_outstanding."""
    _, d = credit_run
    gid, kind = d["agents/gid"], d["agents/type"]
    n = gid.size
    pos, src = _columns(d)
    term = d["scenario"]["model"]["credit_term"]
    with open_run(str(credit_run[0])) as run:
        last = run.edges(-1)
    np.testing.assert_array_equal(last["owed"], d["snapshots/edge_owed"][-1])
    np.testing.assert_array_equal(last["source"], d["network/source"])
    for s, tick in enumerate(d["snapshots/tick"]):
        edge = d["snapshots/edge_owed"][s]
        dst = pos[d["snapshots/edge_target"][s].astype(np.int64)]
        obligations = np.bincount(src, weights=edge, minlength=n)
        np.testing.assert_allclose(d["snapshots/obligations"][s], obligations, rtol=1e-13)
        np.testing.assert_allclose(d["snapshots/claims"][s], np.bincount(dst, weights=edge,
                                                                        minlength=n),
                                   rtol=1e-13, atol=1e-300)
        assert np.all(obligations[kind != TYPE_PAYMENT] == 0)
        if tick == 0:
            assert not edge.any()
            continue
        total = d["timeseries/credit_outstanding"][tick - 1].sum()
        assert obligations.sum() == pytest.approx(total, rel=1e-12)
        settled = (tick + gid) % term == 0
        assert np.all(obligations[settled] == 0)
        assert np.count_nonzero(obligations[~settled & (kind == TYPE_PAYMENT)]) > 10


def test_risk_measures_equal_references_from_the_snapshots(credit_run):
    """At every snapshot that is also a risk sample, the recorded DebtRank, contagion
    probabilities and clearing shortfall of the exposure network equal serial numpy /
    scipy references computed from the snapshot (wealth, edges' obligations), with the
    stressed set the 10 largest debtors; the 20 most systemic agents likewise."""
    _, d = credit_run
    gid = d["agents/gid"]
    n = gid.size
    pos, _ = _columns(d)
    risk = d["scenario"]["risk"]
    assert risk["solver"] == "exact" and risk["stressed_top"] == 10
    checked = 0
    for s, tick in enumerate(d["snapshots/tick"]):
        if tick == 0 or tick % risk["every"]:
            continue
        wealth = d["snapshots/wealth"][s]
        L, claims, obligations = _credit_matrix(d, s)
        equity = np.maximum(wealth + claims - obligations, 1e-9)
        assets = wealth + claims
        # The stressed set: the 10 largest debtors, ties to the smaller id (as columns).
        stressed = np.lexsort((gid, -obligations))[:10]
        assert np.all(obligations[stressed] > 0)
        ref = reference_debtrank(L, equity, assets, stressed)
        row = tick - 1
        assert d["timeseries/debtrank"][row] == pytest.approx(ref["debtrank"], rel=1e-9,
                                                              abs=1e-15)
        assert d["timeseries/debtrank_distressed"][row] == ref["n_distressed"]
        exposure = np.asarray(L[stressed].sum(axis=0)).ravel()
        sigma = risk["buffer_sd"] * assets + 1e-9
        p = 0.5 * erfc((np.maximum(equity, 0) - exposure) / (sigma * math.sqrt(2)))
        exposed = exposure > 0
        exposed[stressed] = False
        assert exposed.sum() > 10
        assert d["timeseries/contagion_expected_defaults"][row] == pytest.approx(
            math.fsum(p[exposed]), rel=1e-12)
        assert d["timeseries/contagion_max_probability"][row] == pytest.approx(
            p[exposed].max(), rel=1e-12)
        cl = reference_clearing(L, wealth)
        scale = obligations.max()
        assert d["timeseries/clearing_shortfall"][row] == pytest.approx(
            cl["shortfall"], abs=1e-9 * scale * n)
        assert d["timeseries/clearing_defaults"][row] == np.count_nonzero(cl["defaulted"])
        # The 20 most systemic agents: one-step impacts sum_j min(1, L_ij / E_j) v_j.
        W = L.multiply(1.0 / equity[None, :]).tocsr()
        W.data = np.minimum(1.0, W.data)
        impact = W @ (assets / math.fsum(assets))
        # (Impacts that tie in one summation order may differ in their last bit in
        # another: the ids must be a top 20 of the reference up to 1e-12, in order.)
        top = np.lexsort((gid, -impact))[:20]
        assert np.all(impact[top] > 0)
        ids, got = d["snapshots/systemic_id"][s].astype(np.int64), d["snapshots/systemic_impact"][s]
        assert np.unique(ids).size == 20 and np.all(np.diff(got) <= 0)
        np.testing.assert_allclose(got, impact[pos[ids]], rtol=1e-12)
        np.testing.assert_allclose(got, impact[top], rtol=1e-12)
        checked += 1
    assert checked >= 4
    assert np.nanmax(d["timeseries/debtrank"]) > 0
    assert np.nanmax(d["timeseries/clearing_defaults"]) > 0  # the shocked cannot pay


def test_plot_draws_the_economy_with_its_credit_panels(credit_run, tmp_path):
    """The plot of a defi run has the markets, R_sys, the trade credit and its DebtRank."""
    from tokensim_hpc.plots import plot_run

    path, _ = credit_run
    png = tmp_path / "credit.png"
    assert plot_run(str(path), str(png)) == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_an_obligation_keeps_its_edge_through_rewiring(tmp_path):
    """Nobody settles within the run (term longer than the run) while weak edges are
    replaced every 2 ticks: every edge that carries an obligation at one snapshot still
    points at the same creditor, with at least as much owed, at the next."""
    out = tmp_path / "keep.h5"
    simulate(2, out, "agents.n=2000", "run.ticks=24", "output.every=4", "risk.every=0",
             "model.pay_probability=0.5", "model.credit_share=1.0", "model.credit_term=100000",
             "network.rewire_every=2", "network.eta_min=0.45", "network.eta0=0.5",
             "network.delta=40.0", scenario="defi")
    d = _read(out)
    assert d["timeseries/edges_rewired"].sum() > 1000  # the network did change a lot
    owed, target = d["snapshots/edge_owed"], d["snapshots/edge_target"]
    for s in range(1, owed.shape[0] - 1):
        carry = owed[s] > 0
        assert carry.sum() > 100
        np.testing.assert_array_equal(target[s + 1][carry], target[s][carry])
        assert np.all(owed[s + 1][carry] >= owed[s][carry])


def test_petsc_solver_agrees_with_the_exact_one(credit_run, tmp_path):
    """risk.solver = "petsc" (PETSc matrices kept between samples, KSP clearing) on 2
    ranks, with PETSc options from the command line (BiCGStab, shown by -ksp_view):
    every dataset equals the exact solver's 3-rank run bit for bit except DebtRank and
    the clearing shortfall, which agree to 1e-9."""
    _, exact = credit_run
    out = tmp_path / "petsc.h5"
    args = ["-m", "tokensim_hpc", "run", str(_scenario(tmp_path)), "-o", str(out), "--quiet"]
    for item in SETS + ("risk.solver=petsc",):
        args += ["--set", item]
    proc = mpirun(2, args + ["--", "-tokensim_ksp_type", "bcgs", "-tokensim_ksp_view"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "type: bcgs" in proc.stdout
    got = _read(out)
    tolerant = {"timeseries/debtrank", "timeseries/clearing_shortfall"}
    for name, want in exact.items():
        if name == "scenario":
            continue
        if name in tolerant:
            np.testing.assert_allclose(got[name], want, rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_an_economy_without_credit_has_nothing_to_propagate(tmp_path):
    """No purchase on credit: the measures are 0 from the first sample on, no agent is
    systemic (ids -1, impacts NaN), nobody owes or is owed."""
    out = tmp_path / "cash.h5"
    simulate(2, out, "agents.n=1000", "run.ticks=16", "output.every=8", "risk.every=8",
             "model.credit_share=0.0", scenario="defi")
    d = _read(out)
    for name in ("debtrank", "clearing_shortfall", "contagion_expected_defaults",
                 "credit_outstanding"):
        assert np.all(np.isnan(d[f"timeseries/{name}"][:7])) or name == "credit_outstanding"
        assert np.all(d[f"timeseries/{name}"][7:] == 0), name
    assert np.all(d["snapshots/systemic_id"] == -1)
    assert np.all(np.isnan(d["snapshots/systemic_impact"]))
    assert not d["snapshots/claims"].any() and not d["snapshots/edge_owed"].any()


def test_petsc_options_are_refused_without_the_petsc_solver(tmp_path):
    """Options after -- with the exact solver, or without the prefix, end the job on
    every rank with status 2 and one message naming the problem; nothing is written."""
    out = tmp_path / "x.h5"
    base = ["-m", "tokensim_hpc", "run", "defi", "-o", str(out), "--set", "agents.n=500",
            "--set", "run.ticks=2"]
    proc = mpirun(2, base + ["--", "-tokensim_ksp_type", "bcgs"])
    assert proc.returncode == 2 and "need risk.solver = 'petsc'" in proc.stderr
    assert proc.stderr.count("error:") == 1
    proc = mpirun(2, base + ["--set", "risk.solver=petsc", "--", "-ksp_type", "bcgs"])
    assert proc.returncode == 2 and "use -tokensim_ksp_type" in proc.stderr
    assert not out.exists()


def test_a_stressed_id_outside_the_network_is_refused(tmp_path):
    from tokensim_hpc.errors import ScenarioError
    from tokensim_hpc.scenario import resolve

    with pytest.raises(ScenarioError, match=r"risk.stressed contains 5000.*0 \.\. agents.n - 1"):
        resolve("defi", ["agents.n=5000", "risk.stressed=[1, 5000]"])
    with pytest.raises(ScenarioError, match="risk.stressed"):
        resolve("defi", ["risk.stressed=[1.5]"])
    with pytest.raises(ScenarioError, match="risk.stressed lists agent 4 twice"):
        resolve("defi", ["risk.stressed=[4, 2, 4]"])
    assert resolve("defi", ["risk.stressed=[4, 2]"]).risk.stressed == (4, 2)


def test_settlement_pays_each_creditor_its_share_by_hand():
    """Repayments and default notices go to the right creditors with the right amounts
    (one rank here; tests/test_credit_mpi.py on several)."""
    from credit_cases import settle_by_hand
    from mpi4py import MPI

    assert settle_by_hand(MPI.COMM_SELF) == []


def test_an_explicit_stressed_set_inside_and_outside_the_credit_network(credit_run,
                                                                          tmp_path):
    """risk.stressed with three debtors and two agents outside the credit network at the
    last sample: the economy is the same to the bit; DebtRank, its distressed count
    and the contagion figures equal the serial references with that set."""
    path, d = credit_run
    gid = d["agents/gid"]
    s, tick = -1, int(d["snapshots/tick"][-1])
    L, claims, obligations = _credit_matrix(d, s)
    debtors = np.flatnonzero(obligations > 0)[[0, 5, 9]]
    isolated = np.flatnonzero((obligations == 0) & (claims == 0))[[0, 1]]
    stressed = np.concatenate((debtors, isolated))
    ids = ", ".join(str(int(i)) for i in gid[stressed])
    out = tmp_path / "explicit.h5"
    simulate(2, out, *SETS, f"risk.stressed=[{ids}]", scenario=str(_scenario(tmp_path)))
    got = _read(out)
    depends = {"timeseries/debtrank", "timeseries/debtrank_distressed",
               "timeseries/contagion_expected_defaults",
               "timeseries/contagion_max_probability"}
    for name, want in d.items():
        if name != "scenario" and name not in depends:
            np.testing.assert_array_equal(got[name], want, err_msg=name)
    wealth = d["snapshots/wealth"][s]
    equity = np.maximum(wealth + claims - obligations, 1e-9)
    ref = reference_debtrank(L, equity, wealth + claims, stressed)
    assert got["timeseries/debtrank"][tick - 1] == pytest.approx(ref["debtrank"], rel=1e-9)
    assert got["timeseries/debtrank_distressed"][tick - 1] == ref["n_distressed"]
    assert ref["n_distressed"] > len(stressed)  # the debtors' creditors were hit
    exposure = np.asarray(L[stressed].sum(axis=0)).ravel()
    sigma = d["scenario"]["risk"]["buffer_sd"] * (wealth + claims) + 1e-9
    p = 0.5 * erfc((equity - exposure) / (sigma * math.sqrt(2)))
    exposed = exposure > 0
    exposed[stressed] = False
    assert got["timeseries/contagion_expected_defaults"][tick - 1] == pytest.approx(
        math.fsum(p[exposed]), rel=1e-12)
