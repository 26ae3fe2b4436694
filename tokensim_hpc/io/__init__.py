"""Output: parallel HDF5 through h5py's mpio driver (the only modules importing h5py).

``names``: every dataset's path, units and description (one place).
``writer``: the collective writer of a run file.
``reader``: :func:`open_run` for analysis (pandas time series, numpy snapshots).
"""

from .reader import RunOutput, open_run

__all__ = ["RunOutput", "open_run"]
