"""HDF5 I/O: output through h5py's mpio driver, and input tables (the only modules
importing h5py).

``names``: every dataset's path, units and description (one place).
``writer``: the collective writer of a run file.
``reader``: :func:`open_run` for analysis (pandas time series, numpy snapshots).
``prices``: an oracle price table from an HDF5 file (serial, read-only).
"""

from .reader import RunOutput, open_run

__all__ = ["RunOutput", "open_run"]
