"""External reference (oracle) prices, one per asset, replicated on every rank.

By default each asset follows a seeded geometric Brownian motion,

    P(t + 1) = P(t) exp((mu - sigma**2 / 2) dt + sigma sqrt(dt) Z(t)),

with Z(t) the counter-based normal of (seed, asset, tick, ORACLE stream): the
same path on every rank and for every rank count, with no generator state.
Alternatively prices are read from a table (ticks x assets: a CSV file, or
an HDF5 file read by :mod:`tokensim_hpc.io.prices`) and smoothed with a
Kalman filter (paper 5.2): a local-level model, state x, observation
d(t) = x(t) + v, x(t) = x(t - 1) + w, var(w) = q, var(v) = r,

    x^(t) = x^(t-1) + K(t) (d(t) - x^(t-1)),  K(t) = (P + q) / (P + q + r).

Local; no MPI.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

# Random stream of the oracle paths (the B1 shock is stream 1).
STREAM_ORACLE = 2


class GBMOracle:
    """Seeded GBM paths of ``n_assets`` reference prices. Local.

    Parameters
    ----------
    p0, mu, sigma : sequences of float, one per asset
        Start price, drift and volatility per unit of ``dt``.
    dt : float
        Length of a tick in the units of mu and sigma (e.g. 1/24 for hourly
        ticks with daily mu and sigma).
    seed : int
    normal : callable
        ``rng.normal`` of the kernels (Cython or numpy twin; identical values).
    """

    def __init__(self, p0, mu, sigma, dt, seed, normal):
        self.p0 = np.asarray(p0, dtype=np.float64)
        self.mu = np.asarray(mu, dtype=np.float64)
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.dt = float(dt)
        self.seed = int(seed)
        self._normal = normal
        self._ids = np.arange(self.p0.shape[0], dtype=np.int64)
        self.price = self.p0.copy()
        self.tick = 0

    def step(self) -> np.ndarray:
        """Advance one tick; return the new prices (a copy)."""
        self.tick += 1
        z = np.empty(self._ids.shape[0])
        self._normal(self.seed, self._ids, self.tick, STREAM_ORACLE, 0, z)
        drift = (self.mu - 0.5 * self.sigma**2) * self.dt
        self.price = self.price * np.exp(drift + self.sigma * math.sqrt(self.dt) * z)
        return self.price.copy()


def kalman_smooth(observed: np.ndarray, q: float, r: float) -> np.ndarray:
    """Filtered estimates of a (ticks, assets) table of noisy prices (local-level model).

    The first row starts the filter (x^ = d(0), P = r). NaN observations
    (missing prices) skip the update: the estimate carries over.
    """
    d = np.asarray(observed, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] == 0:
        raise ValueError("observed prices must be a (ticks, assets) table with >= 1 row")
    out = np.empty_like(d)
    x = d[0].copy()
    p = np.full(d.shape[1], float(r))
    out[0] = x
    for t in range(1, d.shape[0]):
        p = p + q
        k = p / (p + r)
        seen = ~np.isnan(d[t])
        x = np.where(seen, x + k * (np.nan_to_num(d[t]) - x), x)
        p = np.where(seen, (1.0 - k) * p, p)
        out[t] = x
    return out


class TableOracle:
    """Reference prices from a (ticks, assets) table, optionally Kalman-smoothed. Local.

    Row t is the price at tick t (row 0 the start); a run longer than the
    table is refused up front (:func:`check_price_file`, :meth:`check_length`).
    """

    def __init__(self, table, q: float | None = None, r: float | None = None):
        table = np.asarray(table, dtype=np.float64)
        if table.ndim != 2 or np.any(table[0] <= 0) or np.any(~np.isfinite(table[0])):
            raise ValueError("the price table needs a first row of finite prices > 0")
        self.prices = kalman_smooth(table, q, r) if q is not None else table
        self.price = self.prices[0].copy()
        self.tick = 0

    def check_length(self, ticks: int) -> None:
        if self.prices.shape[0] < ticks + 1:
            raise ValueError(f"the price table has {self.prices.shape[0]} rows; a run of "
                             f"{ticks} ticks needs {ticks + 1} (tick 0 included)")

    def step(self) -> np.ndarray:
        self.tick += 1
        self.price = self.prices[self.tick].copy()
        return self.price.copy()


def read_csv_prices(path: str, assets: list[str]) -> np.ndarray:
    """A (ticks, assets) table from a CSV file with a header naming the asset columns.

    Raises ValueError naming the file and the missing asset.
    """
    with open(path, encoding="utf-8") as fh:
        header = [h.strip() for h in fh.readline().strip().split(",")]
    missing = [a for a in assets if a not in header]
    if missing:
        raise ValueError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no rows: the length check says so
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if data.shape[0] == 0:
        return np.empty((0, len(assets)))
    if data.shape[1] != len(header):
        raise ValueError(f"{path}: {data.shape[1]} values per row but {len(header)} columns "
                         "in the header")
    return np.ascontiguousarray(data[:, [header.index(a) for a in assets]])


# "prices.h5" or "prices.hdf5", optionally followed by ":/group/dataset".
_HDF5_FILE = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5))(?::(?P<dataset>.*))?$", re.IGNORECASE)


def read_prices(spec: str, assets: list[str]) -> np.ndarray:
    """A (ticks, assets) table from a price file, chosen by its name.

    ``FILE.h5`` or ``FILE.hdf5`` (optionally ``FILE.h5:/group/dataset``; by default the
    object ``/prices``) is read as HDF5 (:func:`tokensim_hpc.io.prices.read_hdf5_prices`),
    anything else as CSV (:func:`read_csv_prices`). Raises ValueError (or OSError for
    an unreadable CSV) naming the file and the problem.
    """
    m = _HDF5_FILE.match(spec)
    if m is None:
        return read_csv_prices(spec, assets)
    from ..io.prices import DEFAULT_DATASET, read_hdf5_prices

    dataset = m["dataset"]
    if dataset is None:
        dataset = DEFAULT_DATASET
    elif not dataset:
        raise ValueError(f"{spec}: no dataset named after ':' (e.g. {m['file']}:/prices)")
    return read_hdf5_prices(m["file"], dataset, assets)


def check_price_file(path: str, assets: list[str], ticks: int, smoothed: bool = False) -> None:
    """Refuse a price file that a run could not use: missing, unreadable, without a
    column for each asset, too short, or with a price of ticks 0..``ticks`` that is not
    finite and > 0. With the Kalman filter (``smoothed``) a missing price (NaN) after
    tick 0 is allowed: the filter carries its estimate over.

    ``path`` is a CSV or HDF5 file as :func:`read_prices` takes it. Raises ValueError
    naming the file and the problem. Local.
    """
    try:
        table = read_prices(path, assets)
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if table.ndim != 2 or table.shape[0] < ticks + 1:
        rows = table.shape[0] if table.ndim == 2 else 0
        raise ValueError(f"{path}: the price table has {rows} rows; a run of {ticks} ticks "
                         f"needs {ticks + 1} (tick 0 included)")
    used = table[: ticks + 1]
    bad = ~(np.isfinite(used) & (used > 0))
    if smoothed:
        bad[1:] &= ~np.isnan(used[1:])
    if bad.any():
        t, a = (int(i) for i in np.argwhere(bad)[0])
        value = float(used[t, a])
        hint = ("; a missing price (nan) is allowed after tick 0 only with the Kalman "
                "filter (model.oracle_kalman_q > 0)" if math.isnan(value) and t else "")
        raise ValueError(f"{path}: the price of {assets[a]} at tick {t} is {value!r}; "
                         f"prices must be finite and > 0{hint}")
