"""Collective writer of a run file (parallel HDF5, h5py mpio driver).

The file is written under a temporary name, ``<out>.partial``, and renamed to
its final name only once it is complete (root attribute ``complete`` true):
a run that dies leaves no file that looks finished. Agent datasets are
written collectively, each rank its slice of the global Hilbert order at
its global offset, so the datasets do not depend on the number of ranks.
Wall-clock timings are attributes, never datasets.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SetupError
from ..parallel.mpi import exscan_int
from . import names
from ._h5 import h5py


def check_output_path(path: str, overwrite: bool) -> str:
    """Refuse a run that could not write its output, before it starts. Local (rank 0).

    Returns the absolute path.
    """
    if not h5py.get_config().mpi:
        raise SetupError("h5py was built without MPI: parallel HDF5 output needs h5py built "
                         "against a parallel HDF5 (Debian: python3-h5py-mpi; pip: "
                         "HDF5_MPI=ON CC=mpicc pip install --no-binary=h5py h5py)")
    p = Path(path).absolute()
    if p.is_dir():
        raise SetupError(f"output {path!r} is a directory; give a file name such as run.h5")
    if p.exists() and not overwrite:
        raise SetupError(f"output {path!r} exists; pass --overwrite to replace it")
    parent = p.parent
    if not parent.is_dir():
        raise SetupError(f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SetupError(f"output directory {str(parent)!r} is not writable")
    return str(p)


def _git_revision() -> str:
    here = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _collective_dxpl():
    dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
    dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
    return dxpl


_INTEGER_DATASETS = ("agents/gid", "agents/type", "agents/pool", "snapshots/edge_target",
                     "snapshots/cluster", "snapshots/central_id",
                     "snapshots/systemic_id")


class RunWriter:
    """One run's output file. Every method is collective on ``comm``.

    Parameters
    ----------
    comm : MPI communicator
    path : str
        Final file name (checked beforehand by :func:`check_output_path`).
    scenario : :class:`tokensim_hpc.scenario.Scenario`
    snapshot_ticks : list of int
    n_edges : int
        Total number of network edges (over all ranks).
    axes : dict, optional
        Labels along each second axis the model's datasets use, e.g.
        ``{"pools": ["ethereum:ETH/USDC", ...]}`` (see ``names``).
    """

    def __init__(self, comm, path, scenario, snapshot_ticks, n_edges, axes=None):
        self.comm = comm
        self.path = path
        self.tmp_path = path + ".partial"
        self.scenario = scenario
        self.snapshot_ticks = list(snapshot_ticks)
        self.n_total = scenario.agents.n
        self.n_edges = int(n_edges)
        self.axes = dict(axes or {})
        self.catalogue = names.catalogue(scenario.run.model)
        self._dxpl = _collective_dxpl()
        self._snap_row = 0
        revision = _git_revision() if comm.rank == 0 else None
        created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds") \
            if comm.rank == 0 else None
        revision, created = comm.bcast((revision, created), root=0)
        self.f = h5py.File(self.tmp_path, "w", driver="mpio", comm=comm)
        a = self.f.attrs
        a["format_version"] = names.FORMAT_VERSION
        a["tokensim_version"] = __version__
        a["scenario"] = scenario.to_toml()
        a["scenario_name"] = scenario.name
        a["model"] = scenario.run.model
        a["seed"] = scenario.run.seed
        a["n_agents"] = self.n_total
        a["ticks"] = scenario.run.ticks
        a["ranks"] = comm.size
        a["git_revision"] = revision
        a["created"] = created
        a["complete"] = False
        self._create_layout()

    def _dataset(self, path, shape, dtype):
        units, description, axis = self.catalogue[path]
        if axis is not None:
            # The second axis: after ticks for time series, after S for snapshots.
            shape = shape[:1] + (len(self.axes[axis]),) + shape[1:]
        dset = self.f.create_dataset(path, shape=shape, dtype=dtype)
        dset.attrs["units"] = units
        dset.attrs["description"] = description
        if axis is not None:
            dset.attrs["labels"] = [str(v) for v in self.axes[axis]]
        return dset

    def _create_layout(self):
        sc = self.scenario
        n, ticks = self.n_total, sc.run.ticks
        tick = self._dataset("timeseries/tick", (ticks,), "i8")
        tick.make_scale("tick")
        for path in self.catalogue:
            group = path.split("/")[0]
            if path.endswith("/tick"):
                continue
            if group == "timeseries":
                self._dataset(path, (ticks,), "f8").dims[0].attach_scale(tick)
            elif group == "agents":
                self._dataset(path, (n,), "i8" if path in _INTEGER_DATASETS else "f8")
        if sc.output.snapshots:
            n_snap = len(self.snapshot_ticks)
            stick = self._dataset("snapshots/tick", (n_snap,), "i8")
            stick.make_scale("tick")
            for path in self.catalogue:
                if path.startswith("snapshots/") and path != "snapshots/tick":
                    extent = names.SNAPSHOT_EXTENT.get(path)
                    width = {None: n, "edges": self.n_edges}.get(extent)
                    if width is None:
                        width = len(self.axes[extent])
                    self._dataset(path, (n_snap, width),
                                  "i8" if path in _INTEGER_DATASETS else "f8"
                                  ).dims[0].attach_scale(stick)
        if sc.output.network:
            for path in self.catalogue:
                if path.startswith("network/"):
                    self._dataset(path, (self.n_edges,),
                                  "f8" if path.endswith("weight") else "i8")

    def _write(self, path, start, data, row=()):
        """Collective write of 1-D ``data`` at [start, start+len) along the last axis,
        at the leading indices ``row`` (an int or a tuple) of a 2-D or 3-D dataset."""
        dset = self.f[path]
        if dset.size == 0:
            # An empty dataset has no storage to write to; every rank sees the
            # same shape, so every rank skips the collective call together.
            return
        data = np.ascontiguousarray(data, dtype=dset.dtype)
        fspace = dset.id.get_space()
        count = data.shape[0]
        if count == 0:
            # A rank with nothing to write still takes part in the collective call.
            fspace.select_none()
            mspace = h5py.h5s.create_simple((1,))
            mspace.select_none()
            data = np.zeros(1, dtype=dset.dtype)
        else:
            lead = (row,) if isinstance(row, int) else tuple(row)
            fspace.select_hyperslab(lead + (start,), (1,) * len(lead) + (count,))
            mspace = h5py.h5s.create_simple((count,))
        dset.id.write(mspace, fspace, data, dxpl=self._dxpl)

    def _write_whole(self, path, data) -> None:
        """Collective write of a whole dataset by the one rank whose ``data`` is not None."""
        dset = self.f[path]
        if dset.size == 0:
            return
        fspace = dset.id.get_space()
        if data is None:
            fspace.select_none()
            mspace = h5py.h5s.create_simple((1,))
            mspace.select_none()
            data = np.zeros(1, dtype=dset.dtype)
        else:
            data = np.ascontiguousarray(data, dtype=dset.dtype).reshape(dset.shape)
            mspace = h5py.h5s.create_simple(dset.shape)
        dset.id.write(mspace, fspace, data, dxpl=self._dxpl)

    def write_static(self, domain, agent_columns=None) -> None:
        """Agent ids and positions (and the model's static ``agent_columns``, e.g.
        type), and the network's global edge list."""
        off = domain.offset
        self._write("agents/gid", off, domain.gid)
        self._write("agents/x", off, domain.x)
        self._write("agents/y", off, domain.y)
        for name, col in (agent_columns or {}).items():
            self._write(f"agents/{name}", off, col)
            labels = self.axes.get(f"agent_{name}")
            if labels is not None:
                self.f[f"agents/{name}"].attrs["labels"] = [str(v) for v in labels]
        if "network/source" in self.f:
            # Edges follow their source rows, so a rank's edges start after all
            # edges of the lower ranks (which own earlier rows of the global order).
            n_edges = int(domain.indptr[-1])
            e_off = exscan_int(self.comm, n_edges)
            src = np.repeat(domain.gid, np.diff(domain.indptr))
            self._write("network/source", e_off, src)
            self._write("network/target", e_off, domain.edge_targets())
            self._write("network/weight", e_off, domain.edge_weights())

    def write_snapshot(self, tick: int, columns: dict, domain) -> None:
        """One row of every snapshot dataset: this rank's slice at its global offset."""
        if "snapshots/tick" not in self.f:
            return
        row = self._snap_row
        if self.snapshot_ticks[row] != tick:
            raise RuntimeError(f"snapshot of tick {tick} out of the planned order")
        edge_offset = exscan_int(self.comm, int(domain.indptr[-1]))
        for name, col in columns.items():
            col = np.asarray(col)
            extent = names.SNAPSHOT_EXTENT.get(f"snapshots/{name}")
            if extent == "edges":  # edges follow their rows, like network/*
                self._write(f"snapshots/{name}", edge_offset, col, row=row)
            elif extent is not None:  # identical on every rank: rank 0 writes
                self._write(f"snapshots/{name}", 0, col if self.comm.rank == 0 else col[:0],
                            row=row)
            elif col.ndim == 2:  # (n_axis, n_owned): one row per entry of the second axis
                for k in range(col.shape[0]):
                    self._write(f"snapshots/{name}", domain.offset, col[k], row=(row, k))
            else:
                self._write(f"snapshots/{name}", domain.offset, col, row=row)
        self._snap_row += 1

    def write_timeseries(self, records: dict) -> None:
        """The per-tick records (identical on every rank; rank 0 writes them)."""
        ticks = self.scenario.run.ticks
        mine = self.comm.rank == 0
        self._write("timeseries/tick", 0, np.arange(1, ticks + 1) if mine else np.empty(0))
        for name, values in records.items():
            values = np.asarray(values)
            if values.ndim == 2:  # (ticks, n_axis)
                self._write_whole(f"timeseries/{name}", values if mine else None)
            else:
                self._write(f"timeseries/{name}", 0, values if mine else np.empty(0))

    def close(self, attrs: dict | None = None) -> str:
        """Write final attributes, mark complete, close, rename to the final name."""
        if "snapshots/tick" in self.f:
            mine = self.comm.rank == 0
            self._write("snapshots/tick", 0,
                        np.array(self.snapshot_ticks) if mine else np.empty(0))
        for key, value in (attrs or {}).items():
            self.f.attrs[key] = value
        self.f.attrs["complete"] = True
        self.f.close()
        if self.comm.rank == 0:
            os.replace(self.tmp_path, self.path)
        self.comm.Barrier()
        return self.path
