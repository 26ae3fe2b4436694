"""One risk sample of the economy, part by part, after a simulated day.

Run it under MPI; rank 0 prints one JSON line:

    mpirun -n 2 python benchmarks/risk_sample.py --n 1000000 --ticks 24

The ``defi`` scenario runs ``--ticks`` ticks with a risk sample every tick (so
that returns, moments and correlations are those of a running economy); then
each part of a sample is timed as the best of ``--repeat`` calls (max over
ranks, with barriers around each call), on the state the day left:

- ``exposure_ms``: the exposure measures (``ExposureRisk.sample``: the credit
  network's sub-domain, claims and obligations, contagion, DebtRank and the
  clearing, exact solver), and ``subdomain_ms`` building the sub-domain alone;
- ``r_sys_ms``: R_sys (``SystemicRisk.sample``), and its parts
  ``agent_moments_ms``, ``halo_ms`` (the (dev, 1/sd) exchange) and
  ``edge_correlations_ms`` (with the exact sums; on copies of the state);
- ``credit_edges`` and ``credit_agents``: the sub-domain's size, summed over ranks.

Repeated calls keep moving the R_sys moments forward; the work is the same.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import warm_simulation  # (puts the repository on sys.path)

from tokensim_hpc.parallel.mpi import barrier
from tokensim_hpc.parallel.reduce import new_accumulators


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of agents")
    p.add_argument("--ticks", type=int, default=24, help="ticks simulated first")
    p.add_argument("--repeat", type=int, default=5, help="calls per part (the best counts)")
    args = p.parse_args()
    comm, sim = warm_simulation("defi", [f"agents.n={args.n}", f"run.ticks={args.ticks}",
                                         "risk.every=1"])
    m, d = sim.model, sim.domain

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            barrier(comm)
            t0 = time.perf_counter()
            fn()
            barrier(comm)
            times.append(time.perf_counter() - t0)
        return round(1e3 * comm.allreduce(min(times), op=_max()), 2)

    owing = m.payments.credit.owing_edges()
    edges = owing.edges
    sizes = []

    def subdomain():
        net, agents = d.subdomain(edges, owing.rows)
        net.halo.destroy()
        sizes[:] = [edges.shape[0], agents.shape[0]]

    out = {"benchmark": "risk_sample", "n": args.n, "ranks": comm.size, "ticks": args.ticks}
    out["subdomain_ms"] = best(subdomain)
    out["credit_edges"], out["credit_agents"] = (int(v) for v in comm.allreduce(
        np.array(sizes, dtype=np.int64)))
    r = m.risk
    # Copies of the state the day's last sample left, for the parts timed alone.
    # (agent_moments gets a fresh copy of the (dev, 1/sd) pairs: the timed parts after
    # it use the day's.)
    state = [x.copy() for x in (r.wealth_prev, r.mean, r.var, r.cov, r._dev_isd)]
    total_wealth = comm.allreduce(float(r.wealth_prev.sum()))  # (a scale only; not timed)
    out["exposure_ms"] = best(lambda: m.exposure.sample(owing, r.wealth_prev, None,
                                                        total_wealth))
    out["r_sys_ms"] = best(lambda: r.sample(m.holdings, m.slot_value))
    prev, mean, var, cov, dev_isd = state
    dbar = r.last[1]
    out["agent_moments_ms"] = best(lambda: r.kr.agent_moments(
        m.holdings, m.slot_value, prev, mean, var, r.lam, dev_isd.copy()))
    out["halo_ms"] = best(lambda: d.halo.exchange(dev_isd.view(np.complex128).reshape(-1)))
    out["edge_correlations_ms"] = best(lambda: r.kr.edge_correlations(
        d.indptr, d.indices, dev_isd, cov, r.lam, np.zeros(0), r.degree, dbar,
        new_accumulators(2)))
    sim.close()
    if comm.rank == 0:
        print(json.dumps(out), flush=True)


def _max():
    from mpi4py import MPI

    return MPI.MAX


if __name__ == "__main__":
    main()
