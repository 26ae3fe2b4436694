"""The one place h5py is imported.

Debian's h5py loads its MPI build only when it sees mpirun's environment; a
1-rank run started without mpirun needs the MPI build too (for the mpio
driver), so ask for it before h5py is first imported.
"""

import os

os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")

import h5py  # noqa: E402

__all__ = ["h5py"]
