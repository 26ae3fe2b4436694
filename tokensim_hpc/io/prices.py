"""Reading a table of reference (oracle) prices from an HDF5 file (serial, read-only).

Two layouts, both with row t the price at tick t (row 0 the start):

- a 2-D numeric dataset (ticks, columns) whose attribute ``columns`` (or
  ``labels``) names the columns (asset symbols);
- a group holding one 1-D numeric dataset per asset symbol, all of the same
  length.

Every rank reads the small table itself with the default (serial) driver;
the file is opened read-only and closed before returning. Local; no MPI.
"""

from __future__ import annotations

import os

import numpy as np

from ._h5 import h5py

DEFAULT_DATASET = "/prices"


def _names(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def _numeric(dset, where: str) -> None:
    if dset.dtype.kind not in "fiu":
        raise ValueError(f"{where} holds {dset.dtype} values, not numbers")


def _from_table(dset, where: str, assets: list[str]) -> np.ndarray:
    _numeric(dset, where)
    if dset.ndim != 2:
        raise ValueError(f"{where} has shape {dset.shape}; a price table is 2-D "
                         "(ticks, columns), or a group of 1-D datasets, one per asset")
    key = next((k for k in ("columns", "labels") if k in dset.attrs), None)
    if key is None:
        raise ValueError(f"{where} has no attribute 'columns' (or 'labels') naming its columns")
    header = _names(dset.attrs[key])
    if len(header) != dset.shape[1]:
        raise ValueError(f"{where} has {dset.shape[1]} columns but its attribute {key!r} "
                         f"names {len(header)}")
    missing = [a for a in assets if a not in header]
    if missing:
        raise ValueError(f"{where}: no column {missing[0]!r} (columns: {', '.join(header)})")
    data = np.asarray(dset[()], dtype=np.float64)
    return np.ascontiguousarray(data[:, [header.index(a) for a in assets]])


def _from_group(group, where: str, assets: list[str]) -> np.ndarray:
    found = sorted(k for k, v in group.items() if isinstance(v, h5py.Dataset))
    missing = [a for a in assets if a not in found]
    if missing:
        raise ValueError(f"{where}: no dataset {missing[0]!r} "
                         f"(datasets: {', '.join(found) or 'none'})")
    series = []
    for a in assets:
        dset = group[a]
        _numeric(dset, f"{where}/{a}")
        if dset.ndim != 1:
            raise ValueError(f"{where}/{a} has shape {dset.shape}; the series of an asset "
                             "is 1-D (ticks,)")
        series.append(np.asarray(dset[()], dtype=np.float64))
    lengths = {len(s) for s in series}
    if len(lengths) > 1:
        sizes = ", ".join(f"{a}: {len(s)}" for a, s in zip(assets, series, strict=True))
        raise ValueError(f"{where}: the assets' series differ in length ({sizes})")
    return np.ascontiguousarray(np.stack(series, axis=1))


def read_hdf5_prices(path: str, dataset: str, assets: list[str]) -> np.ndarray:
    """A (ticks, assets) float64 table of the columns ``assets`` of an HDF5 price table.

    ``dataset`` names a 2-D dataset with a ``columns`` (or ``labels``) attribute, or a
    group of 1-D datasets named by asset. Raises ValueError naming the file, the
    object and the problem (missing file or object, missing asset, bad shape or type).
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: cannot be read (no such file)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read as HDF5 ({exc})") from None
    with f:
        where = f"{path}:{dataset}"
        obj = f.get(dataset)
        if obj is None:
            raise ValueError(f"{path}: no dataset or group {dataset!r}")
        if isinstance(obj, h5py.Group):
            return _from_group(obj, where, assets)
        if isinstance(obj, h5py.Dataset):
            return _from_table(obj, where, assets)
        raise ValueError(f"{where} is neither a dataset nor a group")
