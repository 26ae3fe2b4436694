"""Reading a run file for analysis (serial; no MPI needed).

>>> run = open_run("output/default.h5")
>>> run.timeseries()            # pandas DataFrame indexed by tick
>>> run.series("pool_price")    # defi: ticks x pools
>>> run.snapshot(-1)            # dict of numpy arrays, agents in global Hilbert order
>>> run.edges()                 # dict: source, target, weight (global ids)
"""

from __future__ import annotations

import tomllib

import numpy as np

from ._h5 import h5py


class RunOutput:
    """A completed run file, opened read-only. Use as a context manager or call close()."""

    def __init__(self, path: str):
        self.path = path
        self.f = h5py.File(path, "r")
        if not bool(self.f.attrs.get("complete", False)):
            self.f.close()
            raise ValueError(f"{path}: the run file is not complete (the run did not finish)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the file."""
        self.f.close()

    @property
    def attrs(self) -> dict:
        """Root attributes (version, seed, ranks, timings ...)."""
        return dict(self.f.attrs)

    @property
    def scenario(self) -> dict:
        """The resolved scenario the run used, as a dict of tables."""
        return tomllib.loads(self.f.attrs["scenario"])

    def timeseries(self):
        """Per-tick records as a pandas DataFrame indexed by tick.

        A record with a second axis (per pool, slot, chain or type) gives one
        column per entry, named ``name[label]``, e.g. ``pool_price[ethereum:ETH/USDC]``.
        """
        import pandas as pd

        group = self.f["timeseries"]
        data = {}
        for name in group:
            if name == "tick":
                continue
            values = group[name][...]
            if values.ndim == 2:
                for k, label in enumerate(self.labels(f"timeseries/{name}")):
                    data[f"{name}[{label}]"] = values[:, k]
            else:
                data[name] = values
        return pd.DataFrame(data, index=pd.Index(group["tick"][...], name="tick"))

    def series(self, name: str):
        """One per-tick record with a second axis as a DataFrame: ticks x labels."""
        import pandas as pd

        dset = self.f[f"timeseries/{name}"]
        return pd.DataFrame(dset[...], columns=self.labels(f"timeseries/{name}"),
                            index=pd.Index(self.f["timeseries/tick"][...], name="tick"))

    def labels(self, path: str) -> list[str]:
        """Names of the entries along a dataset's second axis (its ``labels`` attribute)."""
        raw = self.f[path].attrs.get("labels", [])
        return [v.decode() if isinstance(v, bytes) else str(v) for v in raw]

    @property
    def snapshot_ticks(self) -> np.ndarray:
        """Ticks of the agent snapshots."""
        return self.f["snapshots/tick"][...] if "snapshots" in self.f else np.empty(0, int)

    def snapshot(self, i: int) -> dict:
        """Snapshot number ``i`` (negative counts from the end): tick, gid, x, y and columns."""
        snaps = self.f["snapshots"]
        out = {"tick": int(snaps["tick"][i])}
        out.update({name: self.f["agents"][name][...] for name in self.f["agents"]})
        out.update({name: snaps[name][i] for name in snaps if name != "tick"})
        return out

    def edges(self, snapshot: int | None = None) -> dict:
        """The network as a global edge list: source, target (ids) and weight; with
        ``snapshot`` (an index as in :meth:`snapshot`), the network at that snapshot of a
        run whose network evolves: source, target and strength, and ``owed`` (what
        each source owes its target) where the run has trade credit."""
        if snapshot is None:
            return {name: self.f["network"][name][...] for name in self.f["network"]}
        snaps = self.f["snapshots"]
        target = snaps["edge_target"][snapshot]
        # Each agent's edges follow it in the agents' (Hilbert) order, k of them.
        gid = self.f["agents/gid"][...]
        source = np.repeat(gid, target.shape[0] // max(gid.shape[0], 1))
        out = {"source": source, "target": target,
               "strength": snaps["edge_strength"][snapshot]}
        if "edge_owed" in snaps:
            out["owed"] = snaps["edge_owed"][snapshot]
        return out


def open_run(path: str) -> RunOutput:
    """Open a completed run file for reading."""
    return RunOutput(path)
