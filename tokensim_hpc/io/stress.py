"""The stress file: the base case and every shock side by side, and their differences.

Written by rank 0 alone (every rank holds the same per-tick records; the
file has no per-agent data), under ``<out>.partial`` and renamed when
complete, like a run file. Layout::

    /<run>/<series>             base and each shock: the run's time series
    /difference/<shock>/<series> shock minus base, for the series that a
                                 stress test reads (losses, defaults, R_sys,
                                 prices)
    /tick                       1..ticks, the dimension scale of every series

Every dataset has ``units`` and ``description`` attributes (from
``names``), and ``labels`` along its second axis; each shock's group has
its ``kind``, ``tick``, ``target`` and ``size`` as attributes.
"""

from __future__ import annotations

import os

import numpy as np

from .. import __version__
from . import names
from ._h5 import h5py

# Series whose shock-minus-base differences are written.
DIFFERENCES = ("total_wealth", "wealth_by_type", "pool_price", "oracle_price", "liquidations",
               "liquidated", "systemic_risk", "stress_removed", "bridge_sent",
               "credit_written_off", "credit_defaults", "debtrank", "clearing_shortfall")


def write_stress(path: str, scenario, runs: dict, axes: dict) -> str:
    """Write ``runs`` (name -> per-tick records; "base" first) to ``path``. Local (rank 0)."""
    catalogue = names.catalogue(scenario.run.model)
    tmp = path + ".partial"
    shocks = {s.name: s for s in scenario.stress}
    with h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = names.FORMAT_VERSION
        f.attrs["tokensim_version"] = __version__
        f.attrs["scenario"] = scenario.to_toml()
        f.attrs["scenario_name"] = scenario.name
        f.attrs["kind"] = "stress"
        f.attrs["runs"] = list(runs)
        f.attrs["complete"] = False
        ticks = scenario.run.ticks
        tick = f.create_dataset("tick", data=np.arange(1, ticks + 1))
        tick.attrs["units"], tick.attrs["description"] = "tick", "tick of each row (1..ticks)"
        tick.make_scale("tick")

        def put(group, name, values, prefix=""):
            units, description, axis = catalogue[f"timeseries/{name}"]
            dset = group.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            dset.attrs["units"] = units
            dset.attrs["description"] = prefix + description
            if axis is not None:
                dset.attrs["labels"] = [str(v) for v in axes[axis]]
            dset.dims[0].attach_scale(tick)

        base = runs["base"]
        for run, records in runs.items():
            group = f.create_group(run)
            if run in shocks:
                for key in ("kind", "tick", "target", "size", "duration"):
                    group.attrs[key] = getattr(shocks[run], key)
                group.attrs["agents"] = list(shocks[run].agents)
            for name, values in records.items():
                put(group, name, values)
            if run == "base":
                continue
            diff = f.require_group("difference").create_group(run)
            for name in DIFFERENCES:
                if name in records:
                    put(diff, name, np.asarray(records[name]) - np.asarray(base[name]),
                        f"shock {run!r} minus base: ")
        f.attrs["complete"] = True
    os.replace(tmp, path)
    return path
