"""What every benchmark script shares: run a built-in scenario under MPI, time it
and print one JSON line per backend (rank 0). See ``b1.py`` for the fields."""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tokensim_hpc.engine import Simulation  # noqa: E402
from tokensim_hpc.parallel.mpi import install_abort_hook, world  # noqa: E402
from tokensim_hpc.scenario import resolve  # noqa: E402


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def warm_simulation(scenario: str, sets) -> tuple:
    """(the world communicator, a ``scenario`` simulation that has run its ticks
    without output): the running state that the part-by-part benchmarks time.
    ``sets``: scenario overrides. Collective."""
    comm = world()
    install_abort_hook(comm)
    sim = Simulation(comm, resolve(scenario, list(sets)), quiet=True)
    sim.run(writer=None)
    return comm, sim


def main(scenario: str, doc: str, default_ticks: int, fixed_sets=()) -> None:
    """Parse the command line, run ``scenario`` per backend, print JSON. Collective."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of agents")
    p.add_argument("--ticks", type=int, default=default_ticks, help="ticks to time")
    p.add_argument("--backend", default="cython", help="comma-separated: cython,numpy")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="further scenario overrides")
    args = p.parse_args()
    comm = world()
    install_abort_hook(comm)
    baseline = comm.allreduce(rss_mb())
    for backend in args.backend.split(","):
        sc = resolve(scenario, [f"agents.n={args.n}", f"run.ticks={args.ticks}",
                                f"engine.backend={backend}", *fixed_sets, *args.set])
        sim = Simulation(comm, sc, quiet=True)
        result = sim.run(writer=None)
        sim.close()
        peak = rss_mb()
        total_peak = comm.allreduce(peak)
        max_peak = comm.allreduce(peak, op=_max())
        phases = {name: round(comm.allreduce(sec, op=_max()), 4)
                  for name, sec in sorted(result.timers.items())}
        if comm.rank == 0:
            print(json.dumps({
                "benchmark": scenario, "n": args.n, "ranks": comm.size, "ticks": args.ticks,
                "backend": backend, "init_s": round(result.init_s, 3),
                "run_s": round(result.run_s, 3),
                "agent_ticks_per_s": round(args.n * args.ticks / result.run_s),
                "peak_rss_mb": round(max_peak, 1), "total_peak_rss_mb": round(total_peak, 1),
                "baseline_rss_mb": round(baseline, 1),
                "bytes_per_agent": round((total_peak - baseline) * 2**20 / args.n, 1),
                "bytes_per_agent_total": round(total_peak * 2**20 / args.n, 1),
                "max_ghosts_per_rank": result.n_ghost_max,
                "phases_s": phases,
                "scenario_overrides": args.set,
            }), flush=True)


def _max():
    from mpi4py import MPI

    return MPI.MAX
