"""The ``run`` command on every rank: validate, preflight, simulate, write, summarise.

User errors (bad scenario, unusable output path, h5py without MPI) are
decided on rank 0 before any work and broadcast: rank 0 prints one message
and every rank exits with status 2. Any other exception on any rank aborts
the whole job (status 1) so nobody waits forever in a collective.
"""

from __future__ import annotations

import sys

from .engine import Simulation, snapshot_ticks
from .errors import TokenSimError
from .parallel.mpi import decide_on_root, install_abort_hook, world
from .scenario import resolve
from .timing import format_seconds


def _prepare(args, stress=False):
    from .io.writer import check_output_path

    scenario = resolve(args.scenario, args.set)
    if stress and not scenario.stress:
        from .errors import ScenarioError

        raise ScenarioError(f"scenario {scenario.name!r} has no shocks: the stress command "
                            f"needs [[stress.shocks]] entries (run.model = 'defi')")
    if scenario.run.model == "defi" and scenario.model.oracle_file:
        from .errors import ScenarioError
        from .markets.oracle import check_price_file

        try:
            check_price_file(scenario.model.oracle_file, scenario.markets.base_assets(),
                             scenario.run.ticks, smoothed=scenario.model.oracle_kalman_q > 0)
        except ValueError as exc:
            raise ScenarioError(f"model.oracle_file = {scenario.model.oracle_file!r} is not "
                                f"allowed: {exc}") from None
    _check_petsc_options(scenario, getattr(args, "petsc_options", None) or [])
    out = args.output or f"{scenario.name}{'-stress' if stress else ''}.h5"
    return scenario, check_output_path(out, args.overwrite)


def _uses_petsc(scenario) -> bool:
    """Whether the run computes its risk measures with PETSc."""
    return scenario.run.model == "defi" and scenario.risk.solver == "petsc"


def _check_petsc_options(scenario, options) -> None:
    """PETSc options only with the PETSc risk solver, well formed, and petsc4py there."""
    from .errors import ScenarioError

    uses_petsc = _uses_petsc(scenario)
    if options and not uses_petsc:
        raise ScenarioError(f"PETSc options after -- ({' '.join(options)}) need risk.solver = "
                            f"'petsc'; this scenario computes its risk measures without PETSc "
                            f"(risk.solver = {scenario.risk.solver!r})")
    if not uses_petsc:
        return
    from .linalg.petsc import missing, parse_options

    try:
        parse_options(options)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    why = missing()
    if why:
        raise ScenarioError(f"risk.solver = 'petsc' needs petsc4py ({why}); install "
                            f"python3-petsc4py and export PETSC_DIR (see the README)")


def _start_petsc(comm, scenario, args) -> None:
    """Initialise PETSc with the command line's options if the run uses it. Collective."""
    if _uses_petsc(scenario):
        from .linalg import initialize

        initialize(comm, getattr(args, "petsc_options", None) or [])


def run_command(args) -> int:
    """Run a scenario on MPI_COMM_WORLD. Collective; returns the exit status."""
    comm = world()
    install_abort_hook(comm)
    try:
        scenario, out_path = decide_on_root(comm, _prepare, args)
    except TokenSimError as exc:
        if comm.rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    from .io.writer import RunWriter

    talk = comm.rank == 0 and not args.quiet
    if talk:
        print(f"tokensim-hpc: scenario {scenario.name!r} ({scenario.run.model}), "
              f"{scenario.agents.n:,} agents, {scenario.run.ticks} ticks, {comm.size} ranks, "
              f"backend {scenario.engine.backend}", flush=True)
    _start_petsc(comm, scenario, args)
    sim = Simulation(comm, scenario, quiet=args.quiet)
    if talk:
        print(f"initialised in {sim.init_s:.2f} s; writing {out_path}", flush=True)
    snaps = snapshot_ticks(scenario.run.ticks, scenario.output.every)
    n_edges = int(comm.allreduce(int(sim.domain.indptr[-1])))
    writer = RunWriter(comm, out_path, scenario, snaps, n_edges, axes=sim.model.axes())
    result = sim.run(writer)
    writer.close({"init_seconds": result.init_s, "run_seconds": result.run_s})
    if talk:
        _summary(scenario, result, out_path, comm.size, sim.model.summary(result.records))
    sim.close()
    _check_petsc_freed(scenario)
    return 0


def _check_petsc_freed(scenario) -> None:
    """Every PETSc object the run made is destroyed (a leak is a bug: stop loudly)."""
    if _uses_petsc(scenario):
        from .linalg import live_objects

        left = live_objects()
        if left:
            raise RuntimeError(f"{len(left)} PETSc objects were not destroyed: {left[:5]}")


def _summary(scenario, result, out_path, size, model_lines) -> None:
    ticks = scenario.run.ticks
    rate = scenario.agents.n * ticks / result.run_s if result.run_s > 0 else float("nan")
    print(f"\n  agents        {scenario.agents.n:,} on {size} ranks "
          f"(max {result.n_ghost_max:,} ghosts per rank)")
    print(f"  ticks         {ticks} in {format_seconds(result.run_s)} "
          f"({rate:.3e} agent-ticks/s); init {format_seconds(result.init_s)}")
    if ticks:
        for line in model_lines:
            print(line)
    print(f"  output        {out_path}")


def stress_command(args) -> int:
    """The base case and each shock of the scenario's [stress] table, one after the other
    on MPI_COMM_WORLD; rank 0 writes the stress file. Collective; returns the exit status."""
    import dataclasses

    comm = world()
    install_abort_hook(comm)
    try:
        scenario, out_path = decide_on_root(comm, _prepare, args, stress=True)
    except TokenSimError as exc:
        if comm.rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    talk = comm.rank == 0 and not args.quiet
    runs, axes = {}, None
    _start_petsc(comm, scenario, args)
    cases = [("base", ())] + [(s.name, (s,)) for s in scenario.stress]
    for name, shocks in cases:
        sim = Simulation(comm, dataclasses.replace(scenario, stress=shocks), quiet=True)
        result = sim.run(None)
        axes = sim.model.axes()
        sim.close()
        _check_petsc_freed(scenario)
        runs[name] = result.records
        if talk:
            what = "no shock"
            if shocks:
                s = shocks[0]
                target = f"{len(s.agents)} agents" if s.kind == "default" else repr(s.target)
                what = f"{s.kind} {target} at tick {s.tick}"
            print(f"  {name:<16} {what:<40} {format_seconds(result.run_s)}", flush=True)
    if comm.rank == 0:
        from .io.stress import write_stress

        write_stress(out_path, scenario, runs, axes)
    comm.Barrier()
    if talk:
        base = runs["base"]
        print(f"\n  {'shock':<16} {'wealth at the end':>20} {'liquidations':>13} "
              f"{'R_sys at the end':>17} {'credit written off':>19}")
        for name in runs:
            if name == "base":
                continue
            r = runs[name]
            loss = r["total_wealth"][-1] - base["total_wealth"][-1]
            extra = r["liquidations"].sum() - base["liquidations"].sum()
            d_risk = r["systemic_risk"][-1] - base["systemic_risk"][-1]
            lost = r["credit_written_off"].sum() - base["credit_written_off"].sum()
            print(f"  {name:<16} {loss:>+20.6e} {extra:>+13,.0f} {d_risk:>+17.4g} "
                  f"{lost:>+19.6g}")
        print(f"  (differences from the base case)\n  output        {out_path}")
    return 0
