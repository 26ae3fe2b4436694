"""Risk measures at scale: DebtRank, Eisenberg-Noe clearing and PageRank, over PETSc and exact.

Run it under MPI; rank 0 prints one JSON line:

    mpirun -n 2 python benchmarks/risk.py --n 1000000 --k 10 [-- -tokensim_ksp_type gmres ...]

The network is B1's (k-NN with a fraction p of the edges rewired at random,
N * k exposure edges), the balance sheets come from
``tokensim_hpc.risk.balance_sheets`` (keyed by agent id, so the figures do not
depend on the rank count). Options after ``--`` go to PETSc (prefix
``tokensim_``).

Fields: n, ranks, edges, domain_s (positions, Hilbert sort, k-NN, halo plan),
build_s (both PETSc matrices: the DebtRank impact matrix and the clearing
matrix, with the halo exchange of the ghosts' positions), debtrank_s and
debtrank_iterations (propagation steps) for the shocked set, clearing_s,
clearing_iterations (rounds of the fictitious default algorithm) and
clearing_ksp_iterations, fixed_point_s and fixed_point_iterations (the same
clearing vector by plain iteration), in_strength_s (in-strength of the
liabilities, bit-identical on any rank count), pagerank_s (PageRank of the
liability-weighted network, alpha 0.85: its PETSc matrix built, one KSP
solve, the exact normalising sum and the residual check),
pagerank_iterations (KSP iterations) and pagerank_residual, top_agents_s
(the 20 agents of largest PageRank over all ranks) and pagerank_top (the
first one's id and score), the results (DebtRank R, total loss, distressed
and defaulted agents, defaults, shortfall, residual); exact_build_s,
exact_debtrank_s, exact_fixed_point_s and exact_fixed_point_iterations: the
same DebtRank and fixed-point clearing by the exact solver (``solver="exact"``,
bit-identical on any rank count, no PETSc), with exact_debtrank_diff and
exact_shortfall_diff their differences from the PETSc results; peak_rss_mb (max
over ranks) and total_peak_rss_mb (sum over ranks). Times are the max over
ranks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import rss_mb  # noqa: E402

from tokensim_hpc.engine import build_domain  # noqa: E402
from tokensim_hpc.linalg import initialize, live_objects, split_command_line  # noqa: E402
from tokensim_hpc.parallel.mpi import barrier, install_abort_hook, world, wtime  # noqa: E402
from tokensim_hpc.risk import (  # noqa: E402
    Centrality,
    Clearing,
    DebtRank,
    balance_sheets,
    top_agents,
)
from tokensim_hpc.scenario import resolve  # noqa: E402
from tokensim_hpc.timing import Timers  # noqa: E402


def _timed(comm, fn):
    """(result, seconds: max over ranks) of a collective call."""
    barrier(comm)
    t0 = wtime()
    out = fn()
    return out, comm.allreduce(wtime() - t0, op=_max())


def _max():
    from mpi4py import MPI

    return MPI.MAX


def main() -> None:
    own, petsc_options = split_command_line(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of agents")
    p.add_argument("--k", type=int, default=10, help="exposure edges per agent")
    p.add_argument("--p", type=float, default=0.1, help="fraction of edges rewired at random")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--shocks", type=int, default=10, help="agents shocked (spread over the ids)")
    p.add_argument("--psi", type=float, default=1.0, help="initial distress of the shocked")
    args = p.parse_args(own)
    comm = world()
    install_abort_hook(comm)
    initialize(comm, petsc_options)
    sc = resolve("b1", [f"agents.n={args.n}", f"network.k={args.k}", f"network.p={args.p}",
                        f"run.seed={args.seed}"])
    d, domain_s = _timed(comm, lambda: build_domain(comm, sc, Timers()))
    sheets = balance_sheets(d, args.seed)
    edges = comm.allreduce(int(d.indptr[-1]))

    def build():
        return (DebtRank(d, sheets.liability, sheets.equity, sheets.value),
                Clearing(d, sheets.liability))

    (dr, clearing), build_s = _timed(comm, build)
    shocked = (np.arange(args.shocks, dtype=np.int64) * args.n) // args.shocks
    r, debtrank_s = _timed(comm, lambda: dr.run(shocked, args.psi))
    c, clearing_s = _timed(comm, lambda: clearing.solve(sheets.external))
    f, fixed_s = _timed(comm, lambda: clearing.solve(sheets.external, method="fixed_point",
                                                     tol=1e-12))
    solver = clearing.solver_type
    dr.close()
    clearing.close()

    # The same measures by the exact solver (bit-identical on any rank count, no PETSc).
    def build_exact():
        return (DebtRank(d, sheets.liability, sheets.equity, sheets.value, solver="exact"),
                Clearing(d, sheets.liability, solver="exact"))

    (dr_x, clearing_x), build_exact_s = _timed(comm, build_exact)
    rx, debtrank_exact_s = _timed(comm, lambda: dr_x.run(shocked, args.psi))
    fx, fixed_exact_s = _timed(comm, lambda: clearing_x.solve(sheets.external, tol=1e-12))
    dr_x = clearing_x = None  # freed before the centralities
    with Centrality(d, sheets.liability) as cent:
        _, in_strength_s = _timed(comm, cent.in_strength)
        pr, pagerank_s = _timed(comm, cent.pagerank)
    (top_ids, top_scores), top_s = _timed(comm, lambda: top_agents(d, pr.score, 20))
    d.halo.destroy()
    peak = rss_mb()
    max_peak, total_peak = comm.allreduce(peak, op=_max()), comm.allreduce(peak)
    if comm.rank == 0:
        print(json.dumps({
            "benchmark": "risk", "n": args.n, "ranks": comm.size, "edges": edges,
            "domain_s": round(domain_s, 3), "build_s": round(build_s, 3),
            "debtrank_s": round(debtrank_s, 3), "debtrank_iterations": r.steps,
            "clearing_s": round(clearing_s, 3), "clearing_iterations": c.iterations,
            "clearing_ksp_iterations": c.solver_iterations, "clearing_solver": solver,
            "fixed_point_s": round(fixed_s, 3), "fixed_point_iterations": f.iterations,
            "debtrank": r.debtrank, "total_loss": r.total_loss,
            "n_distressed": r.n_distressed, "n_defaulted_debtrank": r.n_defaulted,
            "n_defaulted_clearing": c.n_defaulted, "shortfall": c.shortfall,
            "clearing_residual": c.residual,
            "in_strength_s": round(in_strength_s, 3), "pagerank_s": round(pagerank_s, 3),
            "pagerank_iterations": pr.iterations, "pagerank_solver": pr.solver,
            "pagerank_residual": pr.residual, "top_agents_s": round(top_s, 3),
            "pagerank_top": [int(top_ids[0]), float(top_scores[0])],
            "fixed_point_max_diff_shortfall": abs(f.shortfall - c.shortfall),
            "exact_build_s": round(build_exact_s, 3),
            "exact_debtrank_s": round(debtrank_exact_s, 3),
            "exact_fixed_point_s": round(fixed_exact_s, 3),
            "exact_fixed_point_iterations": fx.iterations,
            "exact_debtrank_diff": abs(rx.debtrank - r.debtrank),
            "exact_shortfall_diff": abs(fx.shortfall - c.shortfall),
            "peak_rss_mb": round(max_peak, 1), "total_peak_rss_mb": round(total_peak, 1),
            "petsc_options": petsc_options,
            "live_petsc_objects": len(live_objects()),
        }), flush=True)


if __name__ == "__main__":
    main()
