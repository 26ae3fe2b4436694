"""B1's sentiment kernel alone, per agent, on the state of a running B1.

Run it alone or under MPI; rank 0 prints one JSON line:

    python benchmarks/b1_kernel.py --n 500000
    mpirun -n 2 python benchmarks/b1_kernel.py --n 1000000

B1 runs ``--ticks`` ticks first (so that sentiments, cash and tokens are those
of a running market); then ``sentiment_orders`` runs ``--repeat`` times over
every owned row with the ghost values in place (no exchange, no reduction),
and each call is timed. Printed per rank: the best and the median time per
owned agent in ns (``best_ns``, ``median_ns``: lists indexed by rank). To
compare two builds, run the script in each checkout, interleaved.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import warm_simulation  # (puts the repository on sys.path)

from tokensim_hpc.parallel.reduce import new_accumulators


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=500_000, help="number of agents")
    p.add_argument("--ticks", type=int, default=20, help="B1 ticks before the timing")
    p.add_argument("--repeat", type=int, default=20, help="timed kernel calls")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="further scenario overrides (e.g. model.sigma=0)")
    args = p.parse_args()
    comm, sim = warm_simulation("b1", [f"agents.n={args.n}", f"run.ticks={args.ticks}",
                                       *args.set])
    m, d, prm = sim.model, sim.domain, sim.model.p
    s_new = np.empty_like(m.s)
    orders = np.empty_like(m.orders)
    seconds = []
    for _ in range(args.repeat):
        acc = new_accumulators(2)
        t = time.perf_counter()
        m.k.sentiment_orders(d.all_rows, d.indptr, d.indices, d.weights, d.uniform_weight,
                             m.s, s_new, d.gid, m.shock_words, m.cash, m.tokens, orders,
                             m.price, m.momentum(), prm.w_self, prm.w_neighbours,
                             prm.w_momentum, prm.sigma, prm.order_fraction, m.seed,
                             args.ticks + 1, acc[0], acc[1])
        seconds.append(time.perf_counter() - t)
    per_agent = np.array(seconds) / max(d.n_owned, 1) * 1e9
    best = comm.gather(round(float(per_agent.min()), 2))
    median = comm.gather(round(float(np.median(per_agent)), 2))
    sim.close()
    if comm.rank == 0:
        print(json.dumps({"benchmark": "b1_kernel", "n": args.n, "ranks": comm.size,
                          "repeat": args.repeat, "best_ns": best, "median_ns": median,
                          "scenario_overrides": args.set}), flush=True)


if __name__ == "__main__":
    main()
