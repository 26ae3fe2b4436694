"""Command line: ``python -m tokensim_hpc {run,show,scenarios,keys} ...``.

Run under MPI with ``mpirun -n 4 python -m tokensim_hpc run b1 -o b1.h5``
or ``srun python -m tokensim_hpc run ...`` (see slurm/run.sbatch).
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import TokenSimError

EPILOG = """\
examples:
  python -m tokensim_hpc scenarios
  python -m tokensim_hpc show b1 --set agents.n=1000000
  python -m tokensim_hpc plot b1.h5                     # -> b1.png
  mpirun -n 4 python -m tokensim_hpc run b1 -o b1.h5 --set run.ticks=500
  mpirun -n 2 python -m tokensim_hpc run my_scenario.toml --set engine.backend=numpy
  mpirun -n 2 python -m tokensim_hpc run defi --set risk.solver=petsc \
      -- -tokensim_ksp_type bcgs -tokensim_ksp_rtol 1e-12   # PETSc options after --

A scenario is a TOML file or a built-in name. Values are layered: package
defaults, then the file, then each --set SECTION.KEY=VALUE. Every key, its
default and what is allowed: python -m tokensim_hpc keys
"""


def _simulation_arguments(parser, scenario_help: str, output_help: str) -> None:
    """The arguments of the commands that simulate (run, stress)."""
    parser.add_argument("scenario", help=scenario_help)
    parser.add_argument("-o", "--output", metavar="OUT.h5", help=output_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario value, e.g. --set agents.n=1000000 "
                             "(repeatable)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines or summary")
    parser.add_argument("petsc_options", nargs="*", metavar="-- PETSC_OPTIONS",
                        help="after --: PETSc options for risk.solver = 'petsc', with the "
                             "prefix tokensim_, e.g. -- -tokensim_ksp_type gmres "
                             "-tokensim_ksp_rtol 1e-12")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tokensim_hpc",
        description="TokenSim-HPC: MPI simulation of tokenized economies with "
                    "Hilbert-partitioned agents and parallel HDF5 output.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tokensim-hpc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run a scenario (under mpirun/srun for several ranks)",
        description="Run a scenario on every rank of MPI_COMM_WORLD and write one HDF5 "
                    "file. Results are bit-identical on any number of ranks.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _simulation_arguments(run, "TOML file or built-in scenario name (see `scenarios`)",
                          "output HDF5 file (default: SCENARIO_NAME.h5 in the current folder)")

    stress = sub.add_parser(
        "stress", help="run the base case and each [stress] shock; write their differences",
        description="Run a defi scenario without shocks (base), then once per shock of its "
                    "[[stress.shocks]] table (each alone; runs are deterministic, so each is "
                    "the base case until its shock's tick), and write their time series and "
                    "shock-minus-base differences side by side in one HDF5 file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _simulation_arguments(stress, "TOML file with [[stress.shocks]], or a built-in name",
                          "stress file (default: SCENARIO_NAME-stress.h5)")

    show = sub.add_parser("show", help="print the resolved scenario with every default",
                          description="Print the resolved scenario as TOML (no MPI needed).")
    show.add_argument("scenario", help="TOML file or built-in scenario name")
    show.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a scenario value (repeatable)")

    sub.add_parser("scenarios", help="list the built-in scenarios",
                   description="List the built-in scenarios with a one-line description.")
    keys = sub.add_parser("keys", help="list every scenario key with its default and allowed "
                          "values", description="List every scenario key, its default, unit "
                          "and allowed values.")
    keys.add_argument("--markdown", action="store_true",
                      help="print the table of the README's 'Scenario keys' section")

    plot = sub.add_parser("plot", help="draw a run file's time series and sentiment map (PNG)",
                          description="Draw the market time series and the agents' sentiment "
                                      "over the economic space of a run file (no MPI needed).")
    plot.add_argument("run_file", metavar="RUN.h5", help="a completed run file")
    plot.add_argument("-o", "--output", metavar="OUT.png",
                      help="PNG to write (default: RUN.png beside the run file)")
    plot.add_argument("--snapshot", type=int, default=-1,
                      help="agent snapshot to map (default: -1, the last)")
    return p


def _cmd_show(args) -> int:
    from .scenario import resolve

    print(resolve(args.scenario, args.set).to_toml(), end="")
    return 0


def _cmd_scenarios(args) -> int:
    from .scenario import builtin_description, builtin_names

    for name in builtin_names():
        print(f"{name:12s} {builtin_description(name)}")
    return 0


def _cmd_keys(args) -> int:
    from .scenario import describe_keys

    if args.markdown:
        print("| key | default | unit | allowed | meaning |\n|---|---|---|---|---|")
        for key, default, unit, allowed, doc in describe_keys():
            shown = "required" if default == "-" else f"`{default}`"
            # A "|" inside a cell (as in |s_i - s_j|) would end it: escaped.
            allowed, doc = allowed.replace("|", "\\|"), doc.replace("|", "\\|")
            print(f"| `{key}` | {shown} | {unit} | {allowed} | {doc} |")
        return 0
    for key, default, unit, allowed, doc in describe_keys():
        unit_s = f" [{unit}]" if unit else ""
        print(f"{key:26s} = {default:10s}{unit_s}\n    {doc}; allowed: {allowed}")
    return 0


def _cmd_plot(args) -> int:
    from pathlib import Path

    from .plots import plot_run

    out = args.output or str(Path(args.run_file).with_suffix(".png"))
    try:
        print(plot_run(args.run_file, out, snapshot=args.snapshot))
    except (OSError, ValueError, IndexError) as exc:
        print(f"error: cannot plot {args.run_file}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit status (0 ok, 2 user error, 1 failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # PETSc options may look like negative numbers or unknown flags: argparse sees the
    # tokens before "--" only, and the run and stress commands get the rest.
    cut = argv.index("--") if "--" in argv else len(argv)
    own, petsc_options = argv[:cut], argv[cut + 1:]
    args = _parser().parse_args(own)
    if getattr(args, "petsc_options", None) is not None:
        args.petsc_options = list(args.petsc_options) + petsc_options
    elif petsc_options:
        print(f"error: {args.command} takes no PETSc options (after --)", file=sys.stderr)
        return 2
    if args.command == "stress":
        from .runner import stress_command

        return stress_command(args)
    if args.command != "run":
        try:
            return {"show": _cmd_show, "scenarios": _cmd_scenarios, "keys": _cmd_keys,
                    "plot": _cmd_plot}[args.command](args)
        except TokenSimError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from .runner import run_command

    return run_command(args)
